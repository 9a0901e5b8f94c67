-- ---- concurrency -----------------------------------------------------------------------------------
-- Parameters: limit (leases held at once), leaseTtlMs. The leases live in a sorted set at the
-- policy's own state key (lease id -> expiry ms), the decision's key after its scope keys; the
-- entry in the scope key holds only a learned limit: learnedLimit, learnedLimitUntilMs.
local concurrencyEntry = '<dd'

-- The general path's face of the kind: leaseKey[i] the sorted set, leaseCount[i] its size.
local leaseKey, leaseCount = {}, {}
local concurrency = { holdsLeases = true }

function concurrency.decode(i, value, at)
  learnedLimit[i], learnedLimitUntilMs[i] = sunpack(concurrencyEntry, value, at)
end

function concurrency.load(i, _, _, _, key)
  leaseKey[i] = key
  -- Expired leases of a crashed holder go here, whoever calls next.
  call('ZREMRANGEBYSCORE', key, '-inf', now)
  leaseCount[i] = call('ZCARD', key)
end

-- Checked only by a take that acquires, and not against the cost.
function concurrency.check(i, _, limit)
  if not acquire or leaseCount[i] < limit then return 0 end
  local first = call('ZRANGE', leaseKey[i], 0, 0, 'WITHSCORES')
  return max(1, tonumber(first[2]) - now)
end

-- A take that acquires holds a lease of every concurrency policy; its expiry is returned.
function concurrency.charge(i, policy)
  if not acquire then return end
  local expiresAt = now + policy.leaseTtlMs
  if call('ZADD', leaseKey[i], expiresAt, leaseId) == 1 then leaseCount[i] = leaseCount[i] + 1 end
  return expiresAt
end

function concurrency.release(i)
  if call('ZREM', leaseKey[i], leaseId) == 1 then leaseCount[i] = leaseCount[i] - 1 end
end

function concurrency.holds(i)
  return call('ZSCORE', leaseKey[i], leaseId) and true or false
end

-- ttlMs: the renewal's own, or -1 for the policy's leaseTtlMs.
function concurrency.renew(i, policy, ttlMs)
  local expiresAt = now + (ttlMs >= 0 and ttlMs or policy.leaseTtlMs)
  call('ZADD', leaseKey[i], 'XX', expiresAt, leaseId)
  return expiresAt
end

function concurrency.reset(i)
  if leaseCount[i] > 0 then call('DEL', leaseKey[i]) end
end

-- Slots left; when the last lease expires (now when none). The sorted set lives until its last
-- lease expires (an empty one is gone already).
function concurrency.answer(i, _, limit, writing)
  local count, resetAt = leaseCount[i], now
  if count > 0 then
    local last = call('ZRANGE', leaseKey[i], -1, -1, 'WITHSCORES')
    resetAt = max(now, tonumber(last[2]))
    if writing and (acquire or op == 'l' or op == 'r') then
      call('PEXPIREAT', leaseKey[i], resetAt + expiryShiftMs)
    end
  end
  return max(0, limit - count), resetAt, true
end

function concurrency.learnedDue(_, untilMs)
  return untilMs
end

function concurrency.encode(i, policy, dueMs)
  return spack('<c0dI4dd', policy.head, dueMs, 16, learnedLimit[i], learnedLimitUntilMs[i])
end
