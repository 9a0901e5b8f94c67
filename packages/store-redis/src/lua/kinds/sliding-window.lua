-- ---- slidingWindow ---------------------------------------------------------------------------------
-- Parameters: limit, windowMs, precisionMs. An admission in slot s (floor(t / precisionMs))
-- counts until (s + 1) * precisionMs + windowMs. Entry payload: learnedLimit,
-- learnedLimitUntilMs, I4 slotCount, then slotCount pairs (slot, count) ascending, then the total
-- of the counts (an entry without it, 8 bytes shorter, is read too and rewritten with it).
local slidingWindowEntry = '<ddI4'
-- What a common take writes: the kept pairs as read, the charged pair, the total.
local slidingWindowTakeEntry = '<ddI4c0ddd'

-- The oldest slot that still counts at now: the window's cut-off.
local function slidingWindowOldestSlot(windowMs, precisionMs)
  local slot = (now - windowMs) / precisionMs
  slot = slot - slot % 1
  return slot
end

-- The slot holding time `atMs`.
local function slidingWindowSlotOf(atMs, precisionMs)
  local slot = atMs / precisionMs
  slot = slot - slot % 1
  return slot
end

-- When the admissions of `slot` stop counting.
local function slidingWindowSlotEnd(slot, windowMs, precisionMs)
  return (slot + 1) * precisionMs + windowMs
end

-- 0 when `cost` fits beside `total`; -1 when it never can (over the limit); else how many
-- counted admissions must leave the window first.
-- (Against limit - cost, which is exact: total + cost may pass 2^53 and round.)
-- @nonzero-branches: each branch's value is never 0 (the excess is positive in its branch).
local function slidingWindowExcess(total, limit, cost)
  local excess = 0
  if cost > limit then
    excess = -1
  elseif total > limit - cost then
    excess = total - (limit - cost)
  end
  return excess
end

-- Drops the pairs that no longer count (before oldestSlot) from the front of a packed run:
-- slotCount pairs of `value` from byte slotsAt, whose counts sum to `total`.
local function slidingWindowDropPacked(value, slotsAt, slotCount, total, oldestSlot)
  while slotCount > 0 do
    local slot, count = sunpack('<dd', value, slotsAt)
    if slot >= oldestSlot then break end
    total, slotsAt, slotCount = total - count, slotsAt + 16, slotCount - 1
  end
  return slotsAt, slotCount, total
end

-- Charging `cost` at `slot` of a packed run whose latest pair is (lastSlot, lastCount): that pair
-- leaves the run when it is the same slot, its count raised. Returns the pairs kept and the
-- charged pair's count; false when the latest slot is later (the tables take over).
local function slidingWindowChargePacked(slotCount, lastSlot, lastCount, slot, cost)
  local count = cost
  if slotCount > 0 then
    if lastSlot == slot then
      slotCount = slotCount - 1
      count = lastCount + cost
    elseif lastSlot > slot then
      return false
    end
  end
  return slotCount, count
end

-- Admissions left; when the latest slot stops counting; whether no slot counts (idle).
local function slidingWindowAnswer(total, slotCount, lastSlot, limit, windowMs, precisionMs)
  local remaining, resetAt = limit - total, now
  if remaining < 0 then remaining = 0 end
  if slotCount > 0 then
    resetAt = slidingWindowSlotEnd(lastSlot, windowMs, precisionMs)
  end
  return remaining, resetAt, slotCount == 0
end

-- The common take (see common-take.ts): a take of cost >= 1 from an entry with its total and
-- without a learned limit (or past due), slots kept as the bytes read; false: the general path.
local function slidingWindowTake(dueMs, payloadLength, learnedLimit, learnedLimitUntilMs, slotCount, value, slotsAt, limit, windowMs, precisionMs, cost)
  local total, lastSlot, lastCount = 0, 0, 0
  if dueMs < now then
    slotCount = 0
  else
    if learnedLimit ~= 0 or slotCount == 0 or payloadLength ~= 28 + 16 * slotCount then return false end
    if slotsAt + payloadLength - 21 > #value then return false end
    -- The latest pair and the total, which follows it.
    lastSlot, lastCount, total = sunpack('<ddd', value, slotsAt + 16 * (slotCount - 1))
    local oldestSlot = slidingWindowOldestSlot(windowMs, precisionMs)
    if slotCount == 1 then
      -- The one pair is the latest, read already.
      if lastSlot < oldestSlot then total, slotCount = total - lastCount, 0 end
    else
      slotsAt, slotCount, total = slidingWindowDropPacked(value, slotsAt, slotCount, total, oldestSlot)
    end
  end
  local excess = slidingWindowExcess(total, limit, cost)
  if excess ~= 0 then return false end
  local slot = slidingWindowSlotOf(now, precisionMs)
  local kept, count = slidingWindowChargePacked(slotCount, lastSlot, lastCount, slot, cost)
  total = total + cost
  local remaining, resetAt = slidingWindowAnswer(total, kept + 1, slot, limit, windowMs, precisionMs)
  local keptPairs = ''
  if kept > 0 then keptPairs = value:sub(slotsAt, slotsAt + 16 * kept - 1) end
  return remaining, resetAt, 44 + 16 * kept, 0, 0, kept + 1, keptPairs, slot, count, total
end

-- The general path's face of the kind. A window read from an entry with its total is "packed"
-- (windowPacked[i]): its live pairs stay where they are in the value read, packedCount[i] pairs
-- of packedValue[i] from byte packedAt[i], then at most one more pair chargedSlot[i] /
-- chargedCount[i] (the slot a take charged); windowTotal[i] is the total. slotTables(i) unpacks
-- them into windowSlots[i] / windowCounts[i] for the rest (refund, reconcile, a refusal's retry).
local windowSlots, windowCounts = {}, {}
local windowPacked, packedValue, packedAt, packedCount = {}, {}, {}, {}
local windowTotal, chargedSlot, chargedCount = {}, {}, {}
local slidingWindow = {}

local function totalOf(i)
  if windowPacked[i] then return windowTotal[i] end
  local total, counts = 0, windowCounts[i]
  for j = 1, #counts do total = total + counts[j] end
  return total
end

-- slotCount pairs of `value` from byte `at`, into windowSlots[i] and windowCounts[i].
local function loadSlots(i, value, at, slotCount)
  local slots, counts = {}, {}
  for s = 1, slotCount do
    slots[s], counts[s], at = sunpack('<dd', value, at)
  end
  windowSlots[i], windowCounts[i] = slots, counts
end

-- Window i's slots as tables (unpacks a packed window).
local function slotTables(i)
  if not windowPacked[i] then return end
  loadSlots(i, packedValue[i], packedAt[i], packedCount[i])
  local slot = chargedSlot[i]
  if slot then
    local slots = windowSlots[i]
    slots[#slots + 1] = slot
    windowCounts[i][#slots] = chargedCount[i]
  end
  windowPacked[i] = false
end

local function addToSlot(i, slot, cost)
  local slots, counts = windowSlots[i], windowCounts[i]
  local j = #slots
  while j >= 1 and slots[j] > slot do j = j - 1 end
  if j >= 1 and slots[j] == slot then
    counts[j] = counts[j] + cost
  else
    tinsert(slots, j + 1, slot)
    tinsert(counts, j + 1, cost)
  end
end

-- The number of live pairs and the latest slot (nil when none).
local function latestOf(i)
  if not windowPacked[i] then
    local slotCount = #windowSlots[i]
    return slotCount, windowSlots[i][slotCount]
  end
  local slotCount, lastSlot = packedCount[i], chargedSlot[i]
  if lastSlot then return slotCount + 1, lastSlot end
  if slotCount > 0 then lastSlot = sunpack('<d', packedValue[i], packedAt[i] + 16 * (slotCount - 1)) end
  return slotCount, lastSlot
end

function slidingWindow.decode(i, value, at, payloadLength)
  local slotCount, slotsAt
  learnedLimit[i], learnedLimitUntilMs[i], slotCount, slotsAt = sunpack(slidingWindowEntry, value, at)
  if payloadLength == 28 + 16 * slotCount then
    windowPacked[i], packedValue[i], packedAt[i], packedCount[i], chargedSlot[i] = true, value, slotsAt, slotCount, nil
    windowTotal[i] = sunpack('<d', value, slotsAt + 16 * slotCount)
  else
    windowPacked[i] = false
    loadSlots(i, value, slotsAt, slotCount)
  end
end

function slidingWindow.load(i, policy, _, found)
  if not found then
    windowPacked[i] = false
    windowSlots[i], windowCounts[i] = {}, {}
    return
  end
  local oldestSlot = slidingWindowOldestSlot(policy.windowMs, policy.precisionMs)
  if windowPacked[i] then
    packedAt[i], packedCount[i], windowTotal[i] = slidingWindowDropPacked(packedValue[i], packedAt[i], packedCount[i], windowTotal[i], oldestSlot)
    return
  end
  local slots, counts = windowSlots[i], windowCounts[i]
  local drop = 0
  while drop < #slots and slots[drop + 1] < oldestSlot do drop = drop + 1 end
  if drop > 0 then
    local keptSlots, keptCounts = {}, {}
    for j = drop + 1, #slots do
      keptSlots[#keptSlots + 1] = slots[j]
      keptCounts[#keptCounts + 1] = counts[j]
    end
    windowSlots[i], windowCounts[i] = keptSlots, keptCounts
  end
end

function slidingWindow.check(i, policy, limit, cost)
  local excess = slidingWindowExcess(totalOf(i), limit, cost)
  if excess <= 0 then return excess end
  -- Retry when enough of the oldest admissions have left the window.
  slotTables(i)
  local slots, counts = windowSlots[i], windowCounts[i]
  for j = 1, #slots do
    excess = excess - counts[j]
    if excess <= 0 then return slidingWindowSlotEnd(slots[j], policy.windowMs, policy.precisionMs) - now end
  end
  return -1
end

function slidingWindow.charge(i, policy, _, cost)
  local slot = slidingWindowSlotOf(now, policy.precisionMs)
  if windowPacked[i] and not chargedSlot[i] then
    local slotCount, lastSlot, lastCount = packedCount[i], 0, 0
    if slotCount > 0 then lastSlot, lastCount = sunpack('<dd', packedValue[i], packedAt[i] + 16 * (slotCount - 1)) end
    local kept, count = slidingWindowChargePacked(slotCount, lastSlot, lastCount, slot, cost)
    if kept then
      packedCount[i], chargedSlot[i], chargedCount[i] = kept, slot, count
      windowTotal[i] = windowTotal[i] + cost
      return
    end
  end
  slotTables(i)
  addToSlot(i, slot, cost)
end

-- Takes back the latest admissions first.
function slidingWindow.refund(i, _, _, cost)
  slotTables(i)
  local slots, counts = windowSlots[i], windowCounts[i]
  local j = #slots
  while j >= 1 and cost > 0 do
    local back = min(cost, counts[j])
    counts[j] = counts[j] - back
    cost = cost - back
    if counts[j] == 0 then
      tremove(slots, j)
      tremove(counts, j)
    end
    j = j - 1
  end
end

-- Admissions the server counted and this window did not: phantom admissions that stop counting
-- at the server's reset (or after a window).
function slidingWindow.reconcile(i, policy, limit, remaining, resetAtMs)
  if not remaining then return end
  local deficit = limit - remaining - totalOf(i)
  if deficit <= 0 then return end
  slotTables(i)
  local slot = slidingWindowSlotOf(now, policy.precisionMs)
  if resetAtMs and resetAtMs > now then
    local windowMs, precisionMs = policy.windowMs, policy.precisionMs
    slot = max(ceil((resetAtMs - windowMs) / precisionMs) - 1, slidingWindowOldestSlot(windowMs, precisionMs))
  end
  addToSlot(i, slot, deficit)
end

function slidingWindow.answer(i, policy, limit)
  local slotCount, lastSlot = latestOf(i)
  return slidingWindowAnswer(totalOf(i), slotCount, lastSlot, limit, policy.windowMs, policy.precisionMs)
end

function slidingWindow.learnedDue(_, untilMs)
  return untilMs
end

-- The entry in up to three parts (joining a packed run here would copy it once more).
function slidingWindow.encode(i, policy, dueMs)
  local slotCount = latestOf(i)
  local total = totalOf(i)
  local top = spack('<c0dI4ddI4', policy.head, dueMs, 28 + 16 * slotCount, learnedLimit[i], learnedLimitUntilMs[i], slotCount)
  if windowPacked[i] then
    local at, kept = packedAt[i], packedCount[i]
    local run = kept > 0 and packedValue[i]:sub(at, at + 16 * kept - 1) or nil
    if chargedSlot[i] then return top, run, spack('<ddd', chargedSlot[i], chargedCount[i], total) end
    return top, run, spack('<d', total)
  end
  local slots, counts = windowSlots[i], windowCounts[i]
  local parts = { top }
  for s = 1, slotCount do parts[s + 1] = spack('<dd', slots[s], counts[s]) end
  parts[slotCount + 2] = spack('<d', total)
  return concat(parts)
end
