-- ---- tokenBucket ---------------------------------------------------------------------------------
-- Parameters: capacity (tokens), refillTokens (tokens per refillEveryMs), refillEveryMs.
-- Kept as what was consumed, in token-milliseconds (a token is refillEveryMs of them), so refill
-- is exact integer arithmetic and a policy whose capacity changes keeps its consumption. Entry
-- payload (40 bytes): consumed (token-ms at consumedAtMs), consumedAtMs (epoch ms; later than
-- now while a reconcile holds refill back), everyMs (the refillEveryMs consumed is counted in),
-- learnedLimit, learnedLimitUntilMs. A 32-byte payload is an entry of an earlier version: level
-- (token-ms held), levelAtMs, learnedLimit, learnedLimitUntilMs; it is read as what it left under
-- the limit in force, as that version would have read it.
local tokenBucketEntry = '<ddddd'

-- What was consumed at now; a bucket without state has consumed nothing.
local function tokenBucketToNow(found, consumed, consumedAtMs, refillTokens)
  if not found then
    consumed, consumedAtMs = 0, now
  else
    if consumedAtMs < now then
      -- A product beyond 2^53 rounds, but only when it exceeds `consumed`: 0 either way.
      consumed = consumed - (now - consumedAtMs) * refillTokens
      if consumed < 0 then consumed = 0 end
      consumedAtMs = now
    end
  end
  return consumed, consumedAtMs
end

-- 0 when `cost` tokens can be taken; else ms until they can (-1: never, more than the limit).
-- @nonzero-branches: each branch's value is never 0 (consumedAtMs >= now once brought to now, and the ceil is >= 1).
local function tokenBucketRetryAfter(consumed, consumedAtMs, limit, cost, refillTokens, refillEveryMs)
  local retryAfterMs = 0
  if cost > limit then
    retryAfterMs = -1
  elseif consumed > (limit - cost) * refillEveryMs then
    retryAfterMs = consumedAtMs - now + ceil((consumed - (limit - cost) * refillEveryMs) / refillTokens)
  end
  return retryAfterMs
end

local function tokenBucketCharge(consumed, cost, refillEveryMs)
  return consumed + cost * refillEveryMs
end

-- Whole tokens left; when the bucket is full again; whether it is full and not held back (idle).
-- (Quotients of whole numbers below 2^53 round to the right side of every whole number, so
-- x - x % 1 rounds them exactly, without a math call.)
local function tokenBucketAnswer(consumed, consumedAtMs, limit, refillTokens, refillEveryMs)
  -- limit - ceil(consumed / refillEveryMs), never below 0
  local used = -consumed / refillEveryMs
  local remaining = limit + (used - used % 1)
  if remaining < 0 then remaining = 0 end
  local resetAt = consumedAtMs
  if consumed <= 0 then
    if resetAt < now then resetAt = now end
  else
    -- consumedAtMs + ceil(consumed / refillTokens)
    local behind = -consumed / refillTokens
    resetAt = consumedAtMs - (behind - behind % 1)
  end
  return remaining, resetAt, consumed <= 0 and consumedAtMs <= now
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry without a learned
-- limit (or past due), in this version's payload, counted in the policy's period; false: the
-- general path decides.
local function tokenBucketTake(dueMs, payloadLength, consumed, consumedAtMs, everyMs, learnedLimit, learnedLimitUntilMs, capacity, refillTokens, refillEveryMs, cost)
  if payloadLength ~= 40 then return false end
  local found = dueMs >= now
  if found and (learnedLimit ~= 0 or everyMs ~= refillEveryMs) then return false end
  consumed, consumedAtMs = tokenBucketToNow(found, consumed, consumedAtMs, refillTokens)
  local retryAfterMs = tokenBucketRetryAfter(consumed, consumedAtMs, capacity, cost, refillTokens, refillEveryMs)
  if retryAfterMs ~= 0 then return false end
  consumed = tokenBucketCharge(consumed, cost, refillEveryMs)
  local remaining, resetAt, idle = tokenBucketAnswer(consumed, consumedAtMs, capacity, refillTokens, refillEveryMs)
  -- Full again by now: the general path deletes the entry.
  if idle then return false end
  return remaining, resetAt, 40, consumed, consumedAtMs, refillEveryMs, 0, 0
end

-- The general path's face of the kind: state of policy i in bucketConsumed[i],
-- bucketConsumedAtMs[i], bucketEveryMs[i] (false: read from an earlier version's entry, whose
-- bucketConsumed[i] is the level it held).
local bucketConsumed, bucketConsumedAtMs, bucketEveryMs = {}, {}, {}
local tokenBucket = {}

function tokenBucket.decode(i, value, at, payloadLength)
  if payloadLength == 32 then
    bucketConsumed[i], bucketConsumedAtMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack('<dddd', value, at)
    bucketEveryMs[i] = false
  else
    bucketConsumed[i], bucketConsumedAtMs[i], bucketEveryMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack(tokenBucketEntry, value, at)
  end
end

function tokenBucket.load(i, policy, limit, found)
  local everyMs, refillEveryMs = bucketEveryMs[i], policy.refillEveryMs
  if found and not everyMs then
    -- An earlier version's level: consumed is what it lacked of the limit in force.
    bucketConsumed[i] = max(0, limit * refillEveryMs - bucketConsumed[i])
  elseif found and everyMs ~= refillEveryMs then
    -- Counted in another refill period (the policy changed): in this one, a token begun counts whole.
    bucketConsumed[i] = ceil(bucketConsumed[i] / everyMs) * refillEveryMs
  end
  bucketConsumed[i], bucketConsumedAtMs[i] = tokenBucketToNow(found, bucketConsumed[i], bucketConsumedAtMs[i], policy.refillTokens)
end

function tokenBucket.check(i, policy, limit, cost)
  return tokenBucketRetryAfter(bucketConsumed[i], bucketConsumedAtMs[i], limit, cost, policy.refillTokens, policy.refillEveryMs)
end

function tokenBucket.charge(i, policy, _, cost)
  bucketConsumed[i] = tokenBucketCharge(bucketConsumed[i], cost, policy.refillEveryMs)
end

function tokenBucket.refund(i, policy, _, cost)
  bucketConsumed[i] = max(0, bucketConsumed[i] - cost * policy.refillEveryMs)
end

function tokenBucket.reconcile(i, policy, limit, remaining, resetAtMs)
  -- `remaining` is an upper bound. A report at or below what is left binds now: the server admits
  -- at most that many until its reset, so refill is held back until then. A report above it
  -- leaves the bucket refilling at its own rate. A reset already past: the server's bucket has
  -- refilled since then (compared first, so that no product exceeds what was used).
  if not remaining or remaining > limit then return end
  local used = (limit - remaining) * policy.refillEveryMs
  if resetAtMs and resetAtMs < now then
    if now - resetAtMs >= used / policy.refillTokens then return end
    used = used - (now - resetAtMs) * policy.refillTokens
  end
  if used < bucketConsumed[i] then return end
  bucketConsumed[i] = used
  if resetAtMs and resetAtMs > now and resetAtMs > bucketConsumedAtMs[i] then bucketConsumedAtMs[i] = resetAtMs end
end

function tokenBucket.answer(i, policy, limit)
  return tokenBucketAnswer(bucketConsumed[i], bucketConsumedAtMs[i], limit, policy.refillTokens, policy.refillEveryMs)
end

-- Consumption refills the same whatever the limit: state kept for a learned limit lives to its lapse.
function tokenBucket.learnedDue(_, untilMs)
  return untilMs
end

function tokenBucket.encode(i, policy, dueMs)
  return spack('<c0dI4ddddd', policy.head, dueMs, 40, bucketConsumed[i], bucketConsumedAtMs[i], policy.refillEveryMs, learnedLimit[i], learnedLimitUntilMs[i])
end
