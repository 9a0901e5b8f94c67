-- Pool (KINDS.pool): whole tokens, refilled by policy_refill_tokens at each step of
-- policy_refill_every_ms counted from `anchor_ms` (0 while full).

-- @section declare
refill_steps bigint;

-- @section decode
level := s.a;
anchor_ms := s.b;

-- @section bring_to_now
IF NOT present OR level >= limit_in_force THEN
  level := limit_in_force; anchor_ms := 0;
ELSIF now_ms >= anchor_ms THEN
  refill_steps := (now_ms - anchor_ms) / policy_refill_every_ms;
  IF refill_steps >= (limit_in_force - level + policy_refill_tokens - 1) / policy_refill_tokens THEN
    level := limit_in_force; anchor_ms := 0;
  ELSE
    level := level + refill_steps * policy_refill_tokens;
    anchor_ms := anchor_ms + refill_steps * policy_refill_every_ms;
  END IF;
END IF;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSIF level < cost THEN
  retry_ms := anchor_ms + ((cost - level + policy_refill_tokens - 1) / policy_refill_tokens) * policy_refill_every_ms - now_ms;
END IF;

-- @section charge
-- A full pool starts counting refill steps at its first take.
IF level >= limit_in_force THEN anchor_ms := now_ms; END IF;
level := level - cost;

-- @section refund
level := least(limit_in_force, level + cost);
IF level >= limit_in_force THEN anchor_ms := 0; END IF;

-- @section reconcile
IF obs_remaining IS NOT NULL AND obs_remaining < level THEN
  IF level >= limit_in_force THEN anchor_ms := now_ms; END IF;
  level := obs_remaining;
END IF;
-- The next step lands at the server's reset.
IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms AND level < limit_in_force THEN
  anchor_ms := greatest(anchor_ms, obs_reset_at_ms - policy_refill_every_ms);
END IF;

-- @section answer
remaining := level;
IF level >= limit_in_force THEN
  reset_at_ms := now_ms;
ELSE
  reset_at_ms := anchor_ms + ((limit_in_force - level + policy_refill_tokens - 1) / policy_refill_tokens) * policy_refill_every_ms;
END IF;
idle := level >= limit_in_force;

-- @section refill_span
refill_span_ms := ((policy_capacity + policy_refill_tokens - 1) / policy_refill_tokens) * policy_refill_every_ms;

-- @section encode
s.a := level;
s.b := anchor_ms;
