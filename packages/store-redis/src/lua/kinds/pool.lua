-- ---- pool ------------------------------------------------------------------------------------------
-- Parameters: capacity (tokens), refillTokens (tokens per refillEveryMs), refillEveryMs.
-- Kept as what was consumed, so a policy whose capacity changes keeps its consumption: whole
-- tokens come back in steps of refillEveryMs counted from anchorMs (0 while nothing is consumed).
-- Entry payload (40 bytes): consumed (tokens), anchorMs, everyMs (the refillEveryMs the
-- steps since anchorMs are counted in), learnedLimit, learnedLimitUntilMs. A 32-byte payload is
-- an entry of an earlier version: level (tokens held), anchorMs, learnedLimit,
-- learnedLimitUntilMs; it is read as what it left under the limit in force, as that version would
-- have read it.
local poolEntry = '<ddddd'

-- What was consumed and the anchor at now, steps counted in `everyMs`; a pool without state
-- has consumed nothing.
local function poolToNow(found, consumed, anchorMs, refillTokens, everyMs)
  if not found or consumed <= 0 then
    consumed, anchorMs = 0, 0
  else
    if now >= anchorMs then
      local steps = (now - anchorMs) / everyMs
      steps = steps - steps % 1
      -- A product beyond 2^53 rounds, but only when it exceeds `consumed`: all is back either way.
      consumed = consumed - steps * refillTokens
      anchorMs = anchorMs + steps * everyMs
    end
    if consumed <= 0 then consumed, anchorMs = 0, 0 end
  end
  return consumed, anchorMs
end

-- 0 when `cost` tokens can be taken; else ms until they can (-1: never, more than the limit).
-- @nonzero-branches: each branch's value is never 0 (a pool brought to now has its next step after now).
local function poolRetryAfter(consumed, anchorMs, limit, cost, refillTokens, refillEveryMs)
  local retryAfterMs = 0
  if cost > limit then
    retryAfterMs = -1
  elseif consumed > limit - cost then
    retryAfterMs = anchorMs + ceil((consumed - (limit - cost)) / refillTokens) * refillEveryMs - now
  end
  return retryAfterMs
end

-- A full pool starts counting refill steps when it is first drawn from.
local function poolCharge(consumed, anchorMs, cost)
  if consumed <= 0 then anchorMs = now end
  return consumed + cost, anchorMs
end

-- Tokens left; when the pool is full again; whether it is full (idle).
local function poolAnswer(consumed, anchorMs, limit, refillTokens, refillEveryMs)
  local resetAt = now
  if consumed > 0 then
    -- anchorMs + ceil(consumed / refillTokens) * refillEveryMs, rounded without a math call
    -- (exact: a quotient of whole numbers below 2^53 rounds to the right side of every whole number)
    local behind = -consumed / refillTokens
    resetAt = anchorMs - (behind - behind % 1) * refillEveryMs
  end
  local remaining = limit - consumed
  if remaining < 0 then remaining = 0 end
  return remaining, resetAt, consumed <= 0
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry without a learned
-- limit (or past due), in this version's payload, counted in the policy's period; false: the
-- general path decides.
local function poolTake(dueMs, payloadLength, consumed, anchorMs, everyMs, learnedLimit, learnedLimitUntilMs, capacity, refillTokens, refillEveryMs, cost)
  if payloadLength ~= 40 then return false end
  local found = dueMs >= now
  if found and (learnedLimit ~= 0 or everyMs ~= refillEveryMs) then return false end
  consumed, anchorMs = poolToNow(found, consumed, anchorMs, refillTokens, refillEveryMs)
  local retryAfterMs = poolRetryAfter(consumed, anchorMs, capacity, cost, refillTokens, refillEveryMs)
  if retryAfterMs ~= 0 then return false end
  consumed, anchorMs = poolCharge(consumed, anchorMs, cost)
  local remaining, resetAt, idle = poolAnswer(consumed, anchorMs, capacity, refillTokens, refillEveryMs)
  if idle then return false end
  return remaining, resetAt, 40, consumed, anchorMs, refillEveryMs, 0, 0
end

-- The general path's face of the kind: state of policy i in poolConsumed[i], poolAnchorMs[i],
-- poolEveryMs[i] (false: read from an earlier version's entry, whose poolConsumed[i] is the level
-- it held).
local poolConsumed, poolAnchorMs, poolEveryMs = {}, {}, {}
local pool = {}

function pool.decode(i, value, at, payloadLength)
  if payloadLength == 32 then
    poolConsumed[i], poolAnchorMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack('<dddd', value, at)
    poolEveryMs[i] = false
  else
    poolConsumed[i], poolAnchorMs[i], poolEveryMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack(poolEntry, value, at)
  end
end

function pool.load(i, policy, limit, found)
  local everyMs, refillEveryMs = poolEveryMs[i], policy.refillEveryMs
  local consumed, anchorMs = poolConsumed[i], poolAnchorMs[i]
  if found and not everyMs then
    -- An earlier version's level: consumed is what it lacked of the limit in force.
    consumed = max(0, limit - consumed)
  elseif found and everyMs ~= refillEveryMs then
    -- Steps earned under an earlier refill period (the policy changed) are kept; the period in
    -- force counts on from the last of them.
    consumed, anchorMs = poolToNow(found, consumed, anchorMs, policy.refillTokens, everyMs)
  end
  poolConsumed[i], poolAnchorMs[i] = poolToNow(found, consumed, anchorMs, policy.refillTokens, refillEveryMs)
end

function pool.check(i, policy, limit, cost)
  return poolRetryAfter(poolConsumed[i], poolAnchorMs[i], limit, cost, policy.refillTokens, policy.refillEveryMs)
end

function pool.charge(i, _policy, _limit, cost)
  poolConsumed[i], poolAnchorMs[i] = poolCharge(poolConsumed[i], poolAnchorMs[i], cost)
end

function pool.refund(i, _policy, _limit, cost)
  local consumed = poolConsumed[i] - cost
  if consumed <= 0 then
    poolConsumed[i], poolAnchorMs[i] = 0, 0
  else
    poolConsumed[i] = consumed
  end
end

function pool.reconcile(i, policy, limit, remaining, resetAtMs)
  if remaining and limit - remaining > poolConsumed[i] then
    if poolConsumed[i] <= 0 then poolAnchorMs[i] = now end
    poolConsumed[i] = limit - remaining
  end
  -- The next step comes no earlier than the server's reset.
  if resetAtMs and resetAtMs > now and poolConsumed[i] > 0 then
    poolAnchorMs[i] = max(poolAnchorMs[i], resetAtMs - policy.refillEveryMs)
  end
end

function pool.answer(i, policy, limit)
  return poolAnswer(poolConsumed[i], poolAnchorMs[i], limit, policy.refillTokens, policy.refillEveryMs)
end

-- Consumption refills the same whatever the limit: state kept for a learned limit lives to its lapse.
function pool.learnedDue(_, untilMs)
  return untilMs
end

function pool.encode(i, policy, dueMs)
  return spack('<c0dI4ddddd', policy.head, dueMs, 40, poolConsumed[i], poolAnchorMs[i], policy.refillEveryMs, learnedLimit[i], learnedLimitUntilMs[i])
end
