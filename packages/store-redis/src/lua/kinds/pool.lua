-- ---- pool ------------------------------------------------------------------------------------------
-- Parameters: capacity (tokens), refillTokens (tokens per refillEveryMs), refillEveryMs.
-- Whole tokens come back in steps of refillEveryMs counted from anchorMs (0 while full). Entry
-- payload: level (tokens), anchorMs, learnedLimit, learnedLimitUntilMs.
local poolEntry = '<dddd'

-- The level and anchor at now (limit: the limit in force); a pool without state is full.
local function poolToNow(found, level, anchorMs, limit, refillTokens, refillEveryMs)
  if not found or level >= limit then
    level, anchorMs = limit, 0
  else
    if now >= anchorMs then
      local steps = (now - anchorMs) / refillEveryMs
      steps = steps - steps % 1
      level = level + steps * refillTokens
      anchorMs = anchorMs + steps * refillEveryMs
    end
    if level >= limit then level, anchorMs = limit, 0 end
  end
  return level, anchorMs
end

-- 0 when `cost` tokens can be taken; else ms until they can (-1: never, more than the limit).
-- @nonzero-branches: each branch's value is never 0 (a pool brought to now has its next step after now).
local function poolRetryAfter(level, anchorMs, limit, cost, refillTokens, refillEveryMs)
  local retryAfterMs = 0
  if cost > limit then
    retryAfterMs = -1
  elseif level < cost then
    retryAfterMs = anchorMs + ceil((cost - level) / refillTokens) * refillEveryMs - now
  end
  return retryAfterMs
end

-- A full pool starts counting refill steps when it is first drawn from.
local function poolCharge(level, anchorMs, limit, cost)
  if level >= limit then anchorMs = now end
  return level - cost, anchorMs
end

-- Tokens left; when the pool is full again; whether it is full (idle).
local function poolAnswer(level, anchorMs, limit, refillTokens, refillEveryMs)
  local resetAt = now
  if level < limit then
    -- anchorMs + ceil((limit - level) / refillTokens) * refillEveryMs, rounded without a math call
    local behind = (level - limit) / refillTokens
    resetAt = anchorMs - (behind - behind % 1) * refillEveryMs
  end
  return level, resetAt, level >= limit
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry without a learned
-- limit (or past due); false: the general path decides.
local function poolTake(dueMs, payloadLength, level, anchorMs, learnedLimit, learnedLimitUntilMs, capacity, refillTokens, refillEveryMs, cost)
  if payloadLength ~= 32 then return false end
  local found = dueMs >= now
  if found and learnedLimit ~= 0 then return false end
  level, anchorMs = poolToNow(found, level, anchorMs, capacity, refillTokens, refillEveryMs)
  local retryAfterMs = poolRetryAfter(level, anchorMs, capacity, cost, refillTokens, refillEveryMs)
  if retryAfterMs ~= 0 then return false end
  level, anchorMs = poolCharge(level, anchorMs, capacity, cost)
  local remaining, resetAt, idle = poolAnswer(level, anchorMs, capacity, refillTokens, refillEveryMs)
  if idle then return false end
  return remaining, resetAt, 32, level, anchorMs, 0, 0
end

-- The general path's face of the kind: state of policy i in poolLevel[i], poolAnchorMs[i].
local poolLevel, poolAnchorMs = {}, {}
local pool = {}

function pool.decode(i, value, at)
  poolLevel[i], poolAnchorMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack(poolEntry, value, at)
end

function pool.load(i, policy, limit, found)
  poolLevel[i], poolAnchorMs[i] = poolToNow(found, poolLevel[i], poolAnchorMs[i], limit, policy.refillTokens, policy.refillEveryMs)
end

function pool.check(i, policy, limit, cost)
  return poolRetryAfter(poolLevel[i], poolAnchorMs[i], limit, cost, policy.refillTokens, policy.refillEveryMs)
end

function pool.charge(i, _, limit, cost)
  poolLevel[i], poolAnchorMs[i] = poolCharge(poolLevel[i], poolAnchorMs[i], limit, cost)
end

function pool.refund(i, _, limit, cost)
  local level = min(limit, poolLevel[i] + cost)
  poolLevel[i] = level
  if level >= limit then poolAnchorMs[i] = 0 end
end

function pool.reconcile(i, policy, limit, remaining, resetAtMs)
  if remaining and remaining < poolLevel[i] then
    if poolLevel[i] >= limit then poolAnchorMs[i] = now end
    poolLevel[i] = remaining
  end
  -- The next step comes no earlier than the server's reset.
  if resetAtMs and resetAtMs > now and poolLevel[i] < limit then
    poolAnchorMs[i] = max(poolAnchorMs[i], resetAtMs - policy.refillEveryMs)
  end
end

function pool.answer(i, policy, limit)
  return poolAnswer(poolLevel[i], poolAnchorMs[i], limit, policy.refillTokens, policy.refillEveryMs)
end

-- A pool held below capacity by a lower learned limit refills to it only after the lapse.
function pool.learnedDue(policy, untilMs)
  return untilMs + ceil(policy.capacity / policy.refillTokens) * policy.refillEveryMs
end

function pool.encode(i, policy, dueMs)
  return spack('<c0dI4dddd', policy.head, dueMs, 32, poolLevel[i], poolAnchorMs[i], learnedLimit[i], learnedLimitUntilMs[i])
end
