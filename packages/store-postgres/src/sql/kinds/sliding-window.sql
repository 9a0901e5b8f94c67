-- Sliding window (KINDS.slidingWindow) counted in slots of policy_precision_ms: an admission in
-- slot n counts while now < (n + 1) * policy_precision_ms + policy_window_ms. `slots` ascending,
-- `counts` parallel.

-- @section declare
oldest_slot bigint;
slot bigint;
slot_count bigint;
total bigint;
excess bigint;

-- @section decode
slots := s.xs;
counts := s.ys;

-- @section bring_to_now
-- The oldest slot that still counts (numeric: floor, also before the epoch of a test clock).
oldest_slot := floor((now_ms - policy_window_ms)::numeric / policy_precision_ms)::bigint;
IF NOT present OR slots IS NULL THEN
  slots := '{}'; counts := '{}';
ELSE
  j := 1;
  WHILE j <= cardinality(slots) AND slots[j] < oldest_slot LOOP j := j + 1; END LOOP;
  IF j > 1 THEN slots := slots[j:]; counts := counts[j:]; END IF;
END IF;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSE
  -- @use total
  IF total + cost > limit_in_force THEN
    -- Admitted once enough of the oldest slots stopped counting.
    excess := total + cost - limit_in_force;
    retry_ms := -1;
    FOR j IN 1..cardinality(counts) LOOP
      excess := excess - counts[j];
      IF excess <= 0 THEN
        retry_ms := (slots[j] + 1) * policy_precision_ms + policy_window_ms - now_ms;
        EXIT;
      END IF;
    END LOOP;
  END IF;
END IF;

-- @section charge
slot := now_ms / policy_precision_ms;
slot_count := cost;
-- @use add_to_slot

-- @section refund
-- Taken back from the newest slots first.
excess := cost;
j := cardinality(slots);
WHILE j >= 1 AND excess > 0 LOOP
  slot_count := least(excess, counts[j]);
  counts[j] := counts[j] - slot_count;
  excess := excess - slot_count;
  IF counts[j] = 0 THEN
    slots := slots[1:j - 1] || slots[j + 1:];
    counts := counts[1:j - 1] || counts[j + 1:];
  END IF;
  j := j - 1;
END LOOP;

-- @section reconcile
IF obs_remaining IS NOT NULL THEN
  -- @use total
  slot_count := limit_in_force - obs_remaining - total;
  IF slot_count > 0 THEN
    -- Phantom admissions that stop counting at the server's reset (or after a window).
    slot := now_ms / policy_precision_ms;
    IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms THEN
      slot := greatest(
        ceil((obs_reset_at_ms - policy_window_ms)::numeric / policy_precision_ms)::bigint - 1,
        oldest_slot);
    END IF;
    -- @use add_to_slot
  END IF;
END IF;

-- @section answer
-- @use total
remaining := greatest(0, limit_in_force - total);
idle := cardinality(slots) = 0;
reset_at_ms := CASE WHEN idle THEN now_ms
  ELSE (slots[cardinality(slots)] + 1) * policy_precision_ms + policy_window_ms END;

-- @section encode
s.xs := slots;
s.ys := counts;

-- @section total
total := 0;
FOR j IN 1..cardinality(counts) LOOP total := total + counts[j]; END LOOP;

-- @section add_to_slot
-- slot_count more admissions in `slot`, keeping slots ascending.
j := cardinality(slots);
WHILE j >= 1 AND slots[j] > slot LOOP j := j - 1; END LOOP;
IF j >= 1 AND slots[j] = slot THEN
  counts[j] := counts[j] + slot_count;
ELSE
  slots := slots[1:j] || slot || slots[j + 1:];
  counts := counts[1:j] || slot_count || counts[j + 1:];
END IF;
