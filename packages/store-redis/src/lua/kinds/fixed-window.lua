-- ---- fixedWindow -----------------------------------------------------------------------------------
-- Parameters: limit, windowMs, firstUse (1: a window starts at its first admission; 0: calendar
-- windows, epoch-aligned or from the decision's time-zone bounds). Entry payload: count,
-- startMs, endMs (a reconcile may move it), learnedLimit, learnedLimitUntilMs.
local fixedWindowEntry = '<ddddd'

-- The window that starts now: from now for a first-use window; else the calendar window around
-- now, from the decision's bounds for policy `policyIndex` when they cover now, or epoch-aligned.
local function fixedWindowAt(policyIndex, windowMs, firstUse)
  local startMs, endMs
  if firstUse == 1 then
    startMs, endMs = now, now + windowMs
  else
    startMs, endMs = calendarWindow(policyIndex)
    if not startMs then
      startMs = floor(now / windowMs) * windowMs
      endMs = startMs + windowMs
    end
  end
  return startMs, endMs
end

-- The window at now: the stored one while it runs and counts, else a new one.
local function fixedWindowToNow(found, count, startMs, endMs, policyIndex, windowMs, firstUse)
  if not (found and count > 0 and now < endMs) then
    startMs, endMs = fixedWindowAt(policyIndex, windowMs, firstUse)
    count = 0
  end
  return count, startMs, endMs
end

-- 0 when `cost` fits in the window; else ms until the window ends (-1: never, over the limit).
-- @nonzero-branches: each branch's value is never 0 (a window brought to now ends after now).
local function fixedWindowRetryAfter(count, endMs, limit, cost)
  local retryAfterMs = 0
  if cost > limit then
    retryAfterMs = -1
  elseif count + cost > limit then
    retryAfterMs = endMs - now
  end
  return retryAfterMs
end

-- Admissions left; when they come back; whether the window holds none (idle).
local function fixedWindowAnswer(count, endMs, limit)
  local remaining, resetAt = limit - count, endMs
  if remaining < 0 then remaining = 0 end
  if count <= 0 then resetAt = now end
  return remaining, resetAt, count <= 0
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry without a learned
-- limit (or past due); false: the general path decides.
local function fixedWindowTake(dueMs, payloadLength, count, startMs, endMs, learnedLimit, learnedLimitUntilMs, limit, windowMs, firstUse, cost, policyIndex)
  if payloadLength ~= 40 then return false end
  local found = dueMs >= now
  if found and learnedLimit ~= 0 then return false end
  count, startMs, endMs = fixedWindowToNow(found, count, startMs, endMs, policyIndex, windowMs, firstUse)
  local retryAfterMs = fixedWindowRetryAfter(count, endMs, limit, cost)
  if retryAfterMs ~= 0 then return false end
  count = count + cost
  local remaining, resetAt = fixedWindowAnswer(count, endMs, limit)
  return remaining, resetAt, 40, count, startMs, endMs, 0, 0
end

-- The general path's face of the kind: state of policy i in windowCount[i], windowStartMs[i],
-- windowEndMs[i].
local windowCount, windowStartMs, windowEndMs = {}, {}, {}
local fixedWindow = {}

function fixedWindow.decode(i, value, at)
  windowCount[i], windowStartMs[i], windowEndMs[i], learnedLimit[i], learnedLimitUntilMs[i] = sunpack(fixedWindowEntry, value, at)
end

function fixedWindow.load(i, policy, _, found)
  windowCount[i], windowStartMs[i], windowEndMs[i] = fixedWindowToNow(found, windowCount[i], windowStartMs[i], windowEndMs[i], i, policy.windowMs, policy.firstUse)
end

function fixedWindow.check(i, _, limit, cost)
  return fixedWindowRetryAfter(windowCount[i], windowEndMs[i], limit, cost)
end

function fixedWindow.charge(i, _, _, cost)
  windowCount[i] = windowCount[i] + cost
end

function fixedWindow.refund(i, _, _, cost)
  windowCount[i] = max(0, windowCount[i] - cost)
end

function fixedWindow.reconcile(i, _, limit, remaining, resetAtMs)
  if resetAtMs and resetAtMs > now then windowEndMs[i] = resetAtMs end
  if remaining then windowCount[i] = max(windowCount[i], limit - remaining) end
end

function fixedWindow.answer(i, _, limit)
  return fixedWindowAnswer(windowCount[i], windowEndMs[i], limit)
end

function fixedWindow.learnedDue(_, untilMs)
  return untilMs
end

function fixedWindow.encode(i, policy, dueMs)
  return spack('<c0dI4ddddd', policy.head, dueMs, 40, windowCount[i], windowStartMs[i], windowEndMs[i], learnedLimit[i], learnedLimitUntilMs[i])
end
