-- ---- tokenBucket ---------------------------------------------------------------------------------
-- Parameters: capacity (tokens), refillTokens (tokens per refillEveryMs), refillEveryMs.
-- Kept in token-milliseconds (a token is refillEveryMs of them), so refill is exact integer
-- arithmetic. Entry payload: level (token-ms at levelAtMs), levelAtMs (epoch ms; later than now
-- while a reconcile holds refill back), learnedLimit, learnedLimitUntilMs.
local tokenBucketEntry = '<dddd'

-- The level at now (fullLevel: the limit in force, in token-ms); a bucket without state is full.
local function tokenBucketToNow(found, level, levelAtMs, fullLevel, refillTokens)
  if not found then
    level, levelAtMs = fullLevel, now
  else
    if levelAtMs < now then
      level = level + (now - levelAtMs) * refillTokens
      levelAtMs = now
    end
    if level > fullLevel then level = fullLevel end
  end
  return level, levelAtMs
end

-- 0 when `cost` tokens can be taken; else ms until they can (-1: never, more than the limit).
-- @nonzero-branches: each branch's value is never 0 (levelAtMs >= now once brought to now, and the ceil is >= 1).
local function tokenBucketRetryAfter(level, levelAtMs, limit, cost, refillTokens, refillEveryMs)
  local retryAfterMs = 0
  if cost > limit then
    retryAfterMs = -1
  elseif level < cost * refillEveryMs then
    retryAfterMs = levelAtMs - now + ceil((cost * refillEveryMs - level) / refillTokens)
  end
  return retryAfterMs
end

local function tokenBucketCharge(level, cost, refillEveryMs)
  return level - cost * refillEveryMs
end

-- Whole tokens left; when the bucket is full again; whether it is full and not held back (idle).
local function tokenBucketAnswer(level, levelAtMs, fullLevel, refillTokens, refillEveryMs)
  local remaining = level / refillEveryMs
  remaining = remaining - remaining % 1
  local resetAt = levelAtMs
  if level >= fullLevel then
    if resetAt < now then resetAt = now end
  else
    -- levelAtMs + ceil((fullLevel - level) / refillTokens), rounded without a math call (exact)
    local behind = (level - fullLevel) / refillTokens
    resetAt = levelAtMs - (behind - behind % 1)
  end
  return remaining, resetAt, level >= fullLevel and levelAtMs <= now
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry without a learned
-- limit (or past due); false: the general path decides.
local function tokenBucketTake(dueMs, payloadLength, level, levelAtMs, learnedLimit, learnedLimitUntilMs, capacity, refillTokens, refillEveryMs, cost)
  if payloadLength ~= 32 then return false end
  local found = dueMs >= now
  if found and learnedLimit ~= 0 then return false end
  local fullLevel = capacity * refillEveryMs
  level, levelAtMs = tokenBucketToNow(found, level, levelAtMs, fullLevel, refillTokens)
  local retryAfterMs = tokenBucketRetryAfter(level, levelAtMs, capacity, cost, refillTokens, refillEveryMs)
  if retryAfterMs ~= 0 then return false end
  level = tokenBucketCharge(level, cost, refillEveryMs)
  local remaining, resetAt, idle = tokenBucketAnswer(level, levelAtMs, fullLevel, refillTokens, refillEveryMs)
  -- Full again by now: the general path deletes the entry.
  if idle then return false end
  return remaining, resetAt, 32, level, levelAtMs, 0, 0
end

-- The general path's face of the kind: state of policy i in bucketLevel[i], bucketLevelAtMs[i].
local bucketLevel, bucketLevelAtMs = {}, {}
local tokenBucket = {}

function tokenBucket.decode(i, value, at)
  bucketLevel[i], bucketLevelAtMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack(tokenBucketEntry, value, at)
end

function tokenBucket.load(i, policy, limit, found)
  bucketLevel[i], bucketLevelAtMs[i] = tokenBucketToNow(found, bucketLevel[i], bucketLevelAtMs[i], limit * policy.refillEveryMs, policy.refillTokens)
end

function tokenBucket.check(i, policy, limit, cost)
  return tokenBucketRetryAfter(bucketLevel[i], bucketLevelAtMs[i], limit, cost, policy.refillTokens, policy.refillEveryMs)
end

function tokenBucket.charge(i, policy, _, cost)
  bucketLevel[i] = tokenBucketCharge(bucketLevel[i], cost, policy.refillEveryMs)
end

function tokenBucket.refund(i, policy, limit, cost)
  bucketLevel[i] = min(limit * policy.refillEveryMs, bucketLevel[i] + cost * policy.refillEveryMs)
end

function tokenBucket.reconcile(i, policy, _, remaining, resetAtMs)
  -- `remaining` is an upper bound. A report at or below the level binds now: the server admits
  -- at most that many until its reset, so refill is held back until then. A report above the
  -- level leaves the bucket refilling at its own rate.
  if not remaining or remaining * policy.refillEveryMs > bucketLevel[i] then return end
  bucketLevel[i] = remaining * policy.refillEveryMs
  if resetAtMs and resetAtMs > now and resetAtMs > bucketLevelAtMs[i] then bucketLevelAtMs[i] = resetAtMs end
end

function tokenBucket.answer(i, policy, limit)
  return tokenBucketAnswer(bucketLevel[i], bucketLevelAtMs[i], limit * policy.refillEveryMs, policy.refillTokens, policy.refillEveryMs)
end

-- A bucket held below capacity by a lower learned limit refills to it only after the lapse.
function tokenBucket.learnedDue(policy, untilMs)
  return untilMs + ceil(policy.capacity * policy.refillEveryMs / policy.refillTokens)
end

function tokenBucket.encode(i, policy, dueMs)
  return spack('<c0dI4dddd', policy.head, dueMs, 32, bucketLevel[i], bucketLevelAtMs[i], learnedLimit[i], learnedLimitUntilMs[i])
end
