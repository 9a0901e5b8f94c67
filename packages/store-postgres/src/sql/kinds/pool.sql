-- Pool (KINDS.pool), kept as what was consumed, so a policy whose capacity changes keeps its
-- consumption: whole tokens come back, policy_refill_tokens at each step of `every_ms` counted
-- from `anchor_ms` (0 while nothing is consumed). `every_ms` is the refill period the steps since
-- the anchor are counted in. A row of an earlier version has no `every_ms` (column c is NULL) and
-- held the level in column a: it is read as what it left under the limit in force, as that
-- version read it.

-- @section declare
refill_steps bigint;

-- @section decode
consumed := s.a;
anchor_ms := s.b;
every_ms := s.c;

-- @section bring_to_now
IF NOT present THEN
  consumed := 0;
ELSIF every_ms IS NULL THEN
  -- An earlier version's level: consumed is what it lacked of the limit in force.
  consumed := greatest(0, limit_in_force - consumed);
ELSIF every_ms <> policy_refill_every_ms THEN
  -- Steps earned under an earlier refill period (the policy changed) are kept; the period in
  -- force counts on from the last of them.
  -- @use refill_steps
END IF;
every_ms := policy_refill_every_ms;
-- @use refill_steps

-- @section refill_steps
IF consumed > 0 AND now_ms >= anchor_ms THEN
  refill_steps := (now_ms - anchor_ms) / every_ms;
  -- Compared before multiplied: many steps times the tokens per step may overflow bigint.
  IF refill_steps >= (consumed + policy_refill_tokens - 1) / policy_refill_tokens THEN
    consumed := 0;
  ELSE
    consumed := consumed - refill_steps * policy_refill_tokens;
    anchor_ms := anchor_ms + refill_steps * every_ms;
  END IF;
END IF;
IF consumed <= 0 THEN consumed := 0; anchor_ms := 0; END IF;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSIF consumed > limit_in_force - cost THEN
  retry_ms := anchor_ms + ((consumed - limit_in_force + cost + policy_refill_tokens - 1) / policy_refill_tokens) * policy_refill_every_ms - now_ms;
END IF;

-- @section charge
-- A full pool starts counting refill steps at its first take.
IF consumed <= 0 THEN anchor_ms := now_ms; END IF;
consumed := consumed + cost;

-- @section refund
IF cost >= consumed THEN consumed := 0; anchor_ms := 0;
ELSE consumed := consumed - cost;
END IF;

-- @section reconcile
IF obs_remaining IS NOT NULL AND limit_in_force - obs_remaining > consumed THEN
  IF consumed <= 0 THEN anchor_ms := now_ms; END IF;
  consumed := limit_in_force - obs_remaining;
END IF;
-- The next step lands at the server's reset.
IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms AND consumed > 0 THEN
  anchor_ms := greatest(anchor_ms, obs_reset_at_ms - policy_refill_every_ms);
END IF;

-- @section answer
remaining := greatest(0, limit_in_force - consumed);
IF consumed <= 0 THEN
  reset_at_ms := now_ms;
ELSE
  reset_at_ms := anchor_ms + ((consumed + policy_refill_tokens - 1) / policy_refill_tokens) * policy_refill_every_ms;
END IF;
idle := consumed <= 0;

-- @section encode
s.a := consumed;
s.b := anchor_ms;
s.c := every_ms;
