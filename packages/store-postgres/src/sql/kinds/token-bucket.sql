-- Token bucket (KINDS.tokenBucket), kept as what was consumed, in token-milliseconds: a token is
-- policy_refill_every_ms units and the bucket wins back policy_refill_tokens units per
-- millisecond, so every store computes it exactly, and a policy whose capacity changes keeps its
-- consumption. `consumed` is the consumption at `consumed_at_ms`, which lies in the future while
-- a reconcile holds refill back until the server's reset; `every_ms` is the refill period it is
-- counted in. A row of an earlier version has no `every_ms` (column c is NULL) and held the level
-- in column a: it is read as what it left under the limit in force, as that version read it.

-- @section declare
spare bigint;

-- @section decode
consumed := s.a;
consumed_at_ms := s.b;
every_ms := s.c;

-- @section bring_to_now
IF NOT present THEN
  consumed := 0; consumed_at_ms := now_ms;
ELSE
  IF every_ms IS NULL THEN
    -- An earlier version's level: consumed is what it lacked of the limit in force.
    consumed := greatest(0, limit_in_force * policy_refill_every_ms - consumed);
  ELSIF every_ms <> policy_refill_every_ms THEN
    -- Counted in another refill period (the policy changed): in this one, a token begun counts
    -- whole.
    consumed := ((consumed + every_ms - 1) / every_ms) * policy_refill_every_ms;
  END IF;
  IF consumed_at_ms < now_ms THEN
    -- Compared before multiplied: a long idle time times the refill rate may overflow bigint.
    IF now_ms - consumed_at_ms >= (consumed + policy_refill_tokens - 1) / policy_refill_tokens THEN
      consumed := 0;
    ELSE
      consumed := consumed - (now_ms - consumed_at_ms) * policy_refill_tokens;
    END IF;
    consumed_at_ms := now_ms;
  END IF;
END IF;
every_ms := policy_refill_every_ms;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSE
  spare := (limit_in_force - cost) * policy_refill_every_ms;
  IF consumed > spare THEN
    retry_ms := consumed_at_ms - now_ms + (consumed - spare + policy_refill_tokens - 1) / policy_refill_tokens;
  END IF;
END IF;

-- @section charge
consumed := consumed + cost * policy_refill_every_ms;

-- @section refund
-- A refund of all that was consumed empties it without computing cost * refill_every_ms.
IF cost >= (consumed + policy_refill_every_ms - 1) / policy_refill_every_ms THEN consumed := 0;
ELSE consumed := consumed - cost * policy_refill_every_ms;
END IF;

-- @section reconcile
-- `remaining` is an upper bound. A report at or below what is left binds now: the server admits
-- at most that many until its reset, so refill is held back until then. A report above it leaves
-- the bucket refilling at its own rate. A reset already past: the server's bucket has refilled
-- since then (compared first, so that no product exceeds what was used).
-- (Nested: a report above the limit is not multiplied.)
IF obs_remaining IS NOT NULL AND obs_remaining <= limit_in_force THEN
  spare := (limit_in_force - obs_remaining) * policy_refill_every_ms;
  IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms < now_ms THEN
    IF now_ms - obs_reset_at_ms >= (spare + policy_refill_tokens - 1) / policy_refill_tokens THEN
      spare := -1;
    ELSE
      spare := spare - (now_ms - obs_reset_at_ms) * policy_refill_tokens;
    END IF;
  END IF;
  IF spare >= consumed THEN
    consumed := spare;
    IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms AND obs_reset_at_ms > consumed_at_ms THEN
      consumed_at_ms := obs_reset_at_ms;
    END IF;
  END IF;
END IF;

-- @section answer
remaining := greatest(0, limit_in_force - (consumed + policy_refill_every_ms - 1) / policy_refill_every_ms);
IF consumed <= 0 THEN
  reset_at_ms := greatest(now_ms, consumed_at_ms);
ELSE
  reset_at_ms := consumed_at_ms + (consumed + policy_refill_tokens - 1) / policy_refill_tokens;
END IF;
idle := consumed <= 0 AND consumed_at_ms <= now_ms;

-- @section encode
s.a := consumed;
s.b := consumed_at_ms;
s.c := every_ms;
