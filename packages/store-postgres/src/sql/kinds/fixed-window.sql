-- Fixed window (KINDS.fixedWindow): `count` admitted in [start_ms, end_ms). A first-use window
-- starts at the first admission; a calendar window is epoch-aligned, or for a window in a time
-- zone (a day) taken from the request's bounds.

-- @section declare
bounds_count int;

-- @section decode
count := s.a;
start_ms := s.b;
end_ms := s.c;

-- @section bring_to_now
-- in_bounds holds, per fixed window of the request, a count then that many sorted window starts
-- around the present the client estimated (only zoned windows have any). A clock outside them
-- asks for new ones: the request is answered BOUNDS_NEEDED, applying nothing (decide.sql).
bounds_count := in_bounds[bounds_at];
IF bounds_count >= 2 AND (now_ms < in_bounds[bounds_at + 1]
                          OR now_ms >= in_bounds[bounds_at + bounds_count]) THEN
  bounds_needed := true;
END IF;
IF NOT (present AND count > 0 AND now_ms < end_ms) THEN
  count := 0;
  IF policy_first_use = 1 THEN
    start_ms := now_ms; end_ms := now_ms + policy_window_ms;
  ELSE
    -- Without bounds (fewer than two), epoch-aligned windows.
    start_ms := NULL;
    IF bounds_count >= 2 AND now_ms >= in_bounds[bounds_at + 1]
       AND now_ms < in_bounds[bounds_at + bounds_count] THEN
      j := 1;
      WHILE j < bounds_count - 1 AND in_bounds[bounds_at + j + 1] <= now_ms LOOP j := j + 1; END LOOP;
      start_ms := in_bounds[bounds_at + j]; end_ms := in_bounds[bounds_at + j + 1];
    END IF;
    IF start_ms IS NULL THEN
      start_ms := now_ms / policy_window_ms * policy_window_ms; end_ms := start_ms + policy_window_ms;
    END IF;
  END IF;
END IF;
bounds_at := bounds_at + 1 + in_bounds[bounds_at]::int;

-- @section check
IF cost > limit_in_force THEN retry_ms := -1;
ELSIF count + cost > limit_in_force THEN retry_ms := end_ms - now_ms;
END IF;

-- @section charge
count := count + cost;

-- @section refund
count := greatest(0, count - cost);

-- @section reconcile
IF obs_reset_at_ms IS NOT NULL AND obs_reset_at_ms > now_ms THEN end_ms := obs_reset_at_ms; END IF;
IF obs_remaining IS NOT NULL THEN count := greatest(count, limit_in_force - obs_remaining); END IF;

-- @section answer
remaining := greatest(0, limit_in_force - count);
reset_at_ms := CASE WHEN count <= 0 THEN now_ms ELSE end_ms END;
idle := count <= 0;

-- @section encode
s.a := count;
s.b := start_ms;
s.c := end_ms;
