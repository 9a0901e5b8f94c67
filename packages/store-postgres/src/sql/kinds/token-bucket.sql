-- Token bucket (KINDS.tokenBucket), in token-milliseconds: a token is policy_refill_every_ms
-- units and the bucket gains policy_refill_tokens units per millisecond, so every store computes
-- it exactly. `level` is the level at `level_at_ms`, which lies in the future while a reconcile
-- holds refill back until the server's reset.

-- @section declare
full_level bigint;
need_level bigint;

-- @section decode
level := s.a;
level_at_ms := s.b;

-- @section bring_to_now
full_level := limit_in_force * policy_refill_every_ms;
IF NOT present THEN
  level := full_level; level_at_ms := now_ms;
ELSE
  IF level_at_ms < now_ms THEN
    -- Compared before multiplied: a long idle time times the refill rate may overflow bigint.
    IF level >= full_level
       OR now_ms - level_at_ms >= (full_level - level + policy_refill_tokens - 1) / policy_refill_tokens THEN
      level := full_level;
    ELSE
      level := level + (now_ms - level_at_ms) * policy_refill_tokens;
    END IF;
    level_at_ms := now_ms;
  END IF;
  IF level > full_level THEN level := full_level; END IF;
END IF;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSE
  need_level := cost * policy_refill_every_ms;
  IF level < need_level THEN
    retry_ms := level_at_ms - now_ms + (need_level - level + policy_refill_tokens - 1) / policy_refill_tokens;
  END IF;
END IF;

-- @section charge
level := level - cost * policy_refill_every_ms;

-- @section refund
-- A refund of the whole limit fills the bucket without computing cost * refill_every_ms.
IF cost >= limit_in_force THEN level := full_level;
ELSE level := least(full_level, level + cost * policy_refill_every_ms);
END IF;

-- @section reconcile
-- `remaining` is an upper bound. A report at or below the level binds now: the server admits at
-- most that many until its reset, so refill is held back until then. A report above the level
-- leaves the bucket refilling at its own rate. (remaining <= level / every is remaining * every
-- <= level for whole numbers, without the product's overflow.)
IF obs_remaining IS NOT NULL AND obs_remaining <= level / policy_refill_every_ms THEN
  level := obs_remaining * policy_refill_every_ms;
  IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms AND obs_reset_at_ms > level_at_ms THEN
    level_at_ms := obs_reset_at_ms;
  END IF;
END IF;

-- @section answer
full_level := limit_in_force * policy_refill_every_ms;
remaining := level / policy_refill_every_ms;
IF level >= full_level THEN
  reset_at_ms := greatest(now_ms, level_at_ms);
ELSE
  reset_at_ms := level_at_ms + (full_level - level + policy_refill_tokens - 1) / policy_refill_tokens;
END IF;
idle := level >= full_level AND level_at_ms <= now_ms;

-- @section refill_span
refill_span_ms := (policy_capacity * policy_refill_every_ms + policy_refill_tokens - 1) / policy_refill_tokens;

-- @section encode
s.a := level;
s.b := level_at_ms;
