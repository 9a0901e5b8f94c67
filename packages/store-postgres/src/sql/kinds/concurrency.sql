-- Concurrency (KINDS.concurrency): the leases held, as parallel arrays of ids and expiries; a
-- lease counts while now < its expiry. Only a take that acquires (op 'a') checks and charges it.

-- @section declare
kept_ids text[];
kept_expiries bigint[];
expiry_ms bigint;

-- @section decode
lease_ids := s.ids;
lease_expiries := s.ys;

-- @section bring_to_now
lease := in_leases[q];
IF NOT present OR lease_ids IS NULL THEN
  lease_ids := '{}'; lease_expiries := '{}';
ELSE
  kept_ids := '{}'; kept_expiries := '{}';
  FOR j IN 1..cardinality(lease_ids) LOOP
    IF lease_expiries[j] > now_ms THEN
      kept_ids := array_append(kept_ids, lease_ids[j]);
      kept_expiries := array_append(kept_expiries, lease_expiries[j]);
    END IF;
  END LOOP;
  lease_ids := kept_ids; lease_expiries := kept_expiries;
END IF;

-- @section check
-- A plain take or a peek leaves slots alone.
IF op = 'a' AND cardinality(lease_ids) >= limit_in_force THEN
  -- Retry when the first lease expires.
  expiry_ms := NULL;
  FOR j IN 1..cardinality(lease_expiries) LOOP
    IF expiry_ms IS NULL OR lease_expiries[j] < expiry_ms THEN expiry_ms := lease_expiries[j]; END IF;
  END LOOP;
  retry_ms := greatest(1, coalesce(expiry_ms, 0) - now_ms);
END IF;

-- @section charge
IF op = 'a' THEN
  expiry_ms := now_ms + policy_lease_ttl_ms;
  j := array_position(lease_ids, lease);
  IF j IS NULL THEN
    lease_ids := array_append(lease_ids, lease);
    lease_expiries := array_append(lease_expiries, expiry_ms);
  ELSE
    lease_expiries[j] := expiry_ms;
  END IF;
  IF lease_expiry_ms = 0 OR expiry_ms < lease_expiry_ms THEN lease_expiry_ms := expiry_ms; END IF;
END IF;

-- @section release
j := array_position(lease_ids, lease);
IF j IS NOT NULL THEN
  lease_ids := lease_ids[1:j - 1] || lease_ids[j + 1:];
  lease_expiries := lease_expiries[1:j - 1] || lease_expiries[j + 1:];
END IF;

-- @section renew_check
-- All or nothing: a lease missing from any slot is gone.
IF array_position(lease_ids, lease) IS NULL THEN allowed := 0; END IF;

-- @section renew
expiry_ms := now_ms + coalesce(in_renew_ttls[q], policy_lease_ttl_ms);
lease_expiries[array_position(lease_ids, lease)] := expiry_ms;
IF lease_expiry_ms = 0 OR expiry_ms < lease_expiry_ms THEN lease_expiry_ms := expiry_ms; END IF;

-- @section answer
remaining := greatest(0, limit_in_force - cardinality(lease_ids));
reset_at_ms := now_ms;
FOR j IN 1..cardinality(lease_expiries) LOOP
  IF lease_expiries[j] > reset_at_ms THEN reset_at_ms := lease_expiries[j]; END IF;
END LOOP;
idle := cardinality(lease_ids) = 0;

-- @section encode
s.ids := lease_ids;
s.ys := lease_expiries;
