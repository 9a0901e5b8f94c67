-- sluice: whole decisions (every policy, every op), a batch of them per script call.
-- Mirrors evaluate() in @sluice/core (packages/core/src/math): same formulas, same operation
-- order, IEEE doubles on both sides, so results are identical for the same state and clock.
--
-- One call carries a batch of decisions (all in one hash slot on a Cluster). ARGV[1] is the
-- number of decisions; each one follows as: key count, argument count, then its arguments; its
-- keys come next in KEYS. Below, K[j] is KEYS[kb + j] and A[j] is ARGV[ab + j] of one decision:
-- K[1..n]        state key of policy i (all share the hash tag {partition})
-- K[n+1..]       learned-limit key of each concurrency policy, in policy order
-- A[1]  op: t take, p peek, f refund, c reconcile, l release, r renew, x reset
-- A[2]  cost      A[3] acquire (1/0)     A[4] lease id ("" when none)
-- A[5]  renew ttl ms (-1: each policy's leaseTtl)   A[6] learned-limit ttl ms
-- A[7]  n         A[8] index of the window-bounds section (0 when none)
-- A[9 + 4(i-1) ..]  policy i: kind, a, b, c
--   1 tokenBucket (capacity, refillTokens, refillEveryMs)  2 pool (same)
--   3 fixedWindow (limit, windowMs, firstUse 1/0)  4 slidingWindow (limit, windowMs, precisionMs)
--   5 concurrency (limit, leaseTtlMs, 0)
-- then, for reconcile, 3 per policy: remaining, limit, resetAtMs (-1: not observed)
-- then, at A[8], per policy: m, then m sorted window starts.
--
-- Stored values (strings, integers written with %d so nothing is rounded):
--   tokenBucket "units atMs ll lu"   pool "level anchorMs ll lu"
--   fixedWindow "count startMs endMs ll lu"
--   slidingWindow "ll lu slot0 count0 d1 count1 ..." (d = slot minus the previous slot)
--   concurrency: sorted set lease id -> expiry ms; learned limit "ll lu" in its own key
-- Every written key expires (PXAT) when its state is back to default.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local fmt, match = string.format, string.match

-- One decision's inputs and states. The helpers below are defined once per call and read these
-- upvalues, which each decision resets, so a batch allocates no closures per decision.
local kb, ab
local op, cost, acquire, leaseId, renewTtl, learnedTtl, n, boundsAt, obsAt
-- Reused by every decision of the batch: only indexes 1..n of the current one are read.
local kind, pa, pb, pc, st, limits, retries, existed, metaKey = {}, {}, {}, {}, {}, {}, {}, {}, {}
local dirty = {}

local function configured(i)
  return pa[i]
end

-- ---- kind math ----------------------------------------------------------------------------
local function total(s)
  local t = 0
  for j = 1, #s.counts do t = t + s.counts[j] end
  return t
end

local function addToSlot(s, slot, c)
  local j = #s.slots
  while j >= 1 and s.slots[j] > slot do j = j - 1 end
  if j >= 1 and s.slots[j] == slot then
    s.counts[j] = s.counts[j] + c
  else
    table.insert(s.slots, j + 1, slot)
    table.insert(s.counts, j + 1, c)
  end
end

local function check(i, c)
  local s, limit, k = st[i], limits[i], kind[i]
  if k == 5 then
    if s.size < limit then return 0 end
    local first = redis.call('ZRANGE', KEYS[kb + i], 0, 0, 'WITHSCORES')
    return max(1, tonumber(first[2]) - now)
  end
  if c > limit then return -1 end
  if k == 1 then
    local need = c * pc[i]
    if s.x >= need then return 0 end
    return s.at - now + ceil((need - s.x) / pb[i])
  elseif k == 2 then
    if s.x >= c then return 0 end
    local steps = ceil((c - s.x) / pb[i])
    return s.at + steps * pc[i] - now
  elseif k == 3 then
    if s.count + c <= limit then return 0 end
    return s.endMs - now
  else
    local count = total(s)
    if count + c <= limit then return 0 end
    local excess = count + c - limit
    for j = 1, #s.slots do
      excess = excess - s.counts[j]
      if excess <= 0 then return (s.slots[j] + 1) * pc[i] + pb[i] - now end
    end
    return -1
  end
end

local function charge(i, c)
  local s, k = st[i], kind[i]
  if k == 1 then
    s.x = s.x - c * pc[i]
  elseif k == 2 then
    if s.x >= limits[i] then s.at = now end
    s.x = s.x - c
  elseif k == 3 then
    s.count = s.count + c
  elseif k == 4 then
    addToSlot(s, floor(now / pc[i]), c)
  end
end

local function refund(i, c)
  local s, k, limit = st[i], kind[i], limits[i]
  if k == 1 then
    s.x = min(limit * pc[i], s.x + c * pc[i])
  elseif k == 2 then
    s.x = min(limit, s.x + c)
    if s.x >= limit then s.at = 0 end
  elseif k == 3 then
    s.count = max(0, s.count - c)
  elseif k == 4 then
    local j = #s.slots
    while j >= 1 and c > 0 do
      local take = min(c, s.counts[j])
      s.counts[j] = s.counts[j] - take
      c = c - take
      if s.counts[j] == 0 then
        table.remove(s.slots, j)
        table.remove(s.counts, j)
      end
      j = j - 1
    end
  end
end

local function reconcile(i, rem, reset)
  local s, k, limit = st[i], kind[i], limits[i]
  if k == 1 then
    if rem then s.x = min(s.x, rem * pc[i]) end
    if reset and reset > now and reset > s.at then s.at = reset end
  elseif k == 2 then
    if rem and rem < s.x then
      if s.x >= limit then s.at = now end
      s.x = rem
    end
    if reset and reset > now and s.x < limit then s.at = max(s.at, reset - pc[i]) end
  elseif k == 3 then
    if reset and reset > now then s.endMs = reset end
    if rem then s.count = max(s.count, limit - rem) end
  elseif k == 4 then
    if not rem then return end
    local deficit = limit - rem - total(s)
    if deficit <= 0 then return end
    local slot = floor(now / pc[i])
    if reset and reset > now then
      slot = max(ceil((reset - pb[i]) / pc[i]) - 1, floor((now - pb[i]) / pc[i]))
    end
    addToSlot(s, slot, deficit)
  end
end

-- Latest lease expiry of a concurrency policy (now when it holds none).
local function latestLease(i)
  if st[i].size == 0 then return now end
  local last = redis.call('ZRANGE', KEYS[kb + i], -1, -1, 'WITHSCORES')
  return max(now, tonumber(last[2]))
end


local function decide()
  op = ARGV[ab + 1]
  cost = tonumber(ARGV[ab + 2])
  acquire = ARGV[ab + 3] == '1'
  leaseId = ARGV[ab + 4]
  renewTtl = tonumber(ARGV[ab + 5])
  learnedTtl = tonumber(ARGV[ab + 6])
  n = tonumber(ARGV[ab + 7])
  boundsAt = tonumber(ARGV[ab + 8])
  obsAt = 9 + 4 * n

  -- ---- load ---------------------------------------------------------------------------------
  local nextMeta = n + 1
  for i = 1, n do
    local o = 9 + 4 * (i - 1)
    local k = tonumber(ARGV[ab + o])
    kind[i] = k
    existed[i] = false
    dirty[i] = false
    pa[i] = tonumber(ARGV[ab + o + 1])
    pb[i] = tonumber(ARGV[ab + o + 2])
    pc[i] = tonumber(ARGV[ab + o + 3])

    local s
    local prevLl, prevLu = 0, 0
    if k == 5 then
      metaKey[i] = KEYS[kb + nextMeta]
      nextMeta = nextMeta + 1
      -- Expired leases of a crashed holder go here, whoever calls next.
      redis.call('ZREMRANGEBYSCORE', KEYS[kb + i], '-inf', now)
      s = { size = redis.call('ZCARD', KEYS[kb + i]) }
      existed[i] = s.size > 0
      local m = redis.call('GET', metaKey[i])
      if m then
        local a, b = match(m, '^(%S+) (%S+)$')
        prevLl, prevLu = tonumber(a), tonumber(b)
      end
    else
      local v = redis.call('GET', KEYS[kb + i])
      if v then
        existed[i] = true
        if k == 1 or k == 2 then
          local a, b, c, d = match(v, '^(%S+) (%S+) (%S+) (%S+)$')
          s = { x = tonumber(a), at = tonumber(b) }
          prevLl, prevLu = tonumber(c), tonumber(d)
        elseif k == 3 then
          local a, b, c, d, e = match(v, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
          s = { count = tonumber(a), startMs = tonumber(b), endMs = tonumber(c) }
          prevLl, prevLu = tonumber(d), tonumber(e)
        else
          s = { slots = {}, counts = {} }
          local j, slot = 0, 0
          for w in string.gmatch(v, '%S+') do
            j = j + 1
            if j == 1 then
              prevLl = tonumber(w)
            elseif j == 2 then
              prevLu = tonumber(w)
            elseif j % 2 == 1 then
              slot = slot + tonumber(w)
              s.slots[#s.slots + 1] = slot
            else
              s.counts[#s.counts + 1] = tonumber(w)
            end
          end
        end
      end
    end

    local limit = (prevLl > 0 and now < prevLu) and prevLl or configured(i)
    local ll = (prevLl > 0 and now < prevLu) and prevLl or 0
    local lu = ll > 0 and prevLu or 0
    if op == 'c' then
      local ol = tonumber(ARGV[ab + obsAt + 3 * (i - 1) + 1])
      if ol >= 0 then
        ll = ol
        lu = now + learnedTtl
        limit = ll
      end
    end

    if k == 1 then
      local full = limit * pc[i]
      if s == nil then
        s = { x = full, at = now }
      else
        if s.at < now then
          s.x = s.x + (now - s.at) * pb[i]
          s.at = now
        end
        if s.x > full then s.x = full end
      end
    elseif k == 2 then
      if s == nil then
        s = { x = limit, at = 0 }
      elseif s.x >= limit then
        s.x = limit
        s.at = 0
      else
        if now >= s.at then
          local steps = floor((now - s.at) / pc[i])
          s.x = s.x + steps * pb[i]
          s.at = s.at + steps * pc[i]
        end
        if s.x >= limit then
          s.x = limit
          s.at = 0
        end
      end
    elseif k == 3 then
      if not (s ~= nil and s.count > 0 and now < s.endMs) then
        s = { count = 0 }
        if pc[i] == 1 then
          s.startMs = now
          s.endMs = now + pb[i]
        else
          local found = false
          if boundsAt > 0 then
            -- Walk the bounds section to policy i's list.
            local at = boundsAt
            for _ = 1, i - 1 do at = at + 1 + tonumber(ARGV[ab + at]) end
            local m = tonumber(ARGV[ab + at])
            if m >= 2 and now >= tonumber(ARGV[ab + at + 1]) and now < tonumber(ARGV[ab + at + m]) then
              for j = 1, m - 1 do
                local b0, b1 = tonumber(ARGV[ab + at + j]), tonumber(ARGV[ab + at + j + 1])
                if b0 <= now and now < b1 then
                  s.startMs, s.endMs = b0, b1
                  found = true
                  break
                end
              end
            end
          end
          if not found then
            s.startMs = floor(now / pb[i]) * pb[i]
            s.endMs = s.startMs + pb[i]
          end
        end
      end
    elseif k == 4 then
      if s == nil then
        s = { slots = {}, counts = {} }
      else
        local minSlot = floor((now - pb[i]) / pc[i])
        local drop = 0
        while drop < #s.slots and s.slots[drop + 1] < minSlot do drop = drop + 1 end
        if drop > 0 then
          local slots, counts = {}, {}
          for j = drop + 1, #s.slots do
            slots[#slots + 1] = s.slots[j]
            counts[#counts + 1] = s.counts[j]
          end
          s.slots, s.counts = slots, counts
        end
      end
    end
    s.ll = ll
    s.lu = lu
    st[i] = s
    limits[i] = limit
    retries[i] = 0
  end

  -- ---- op -----------------------------------------------------------------------------------
  local allowed, leaseExp, write = 1, 0, true
  -- dirty[i]: the stored form of policy i is rewritten.

  if op == 't' or op == 'p' then
    local c = op == 'p' and 1 or cost
    for i = 1, n do
      if not (kind[i] == 5 and not (op == 't' and acquire)) then
        local r = check(i, c)
        retries[i] = r
        if r ~= 0 then allowed = 0 end
      end
    end
    if op == 'p' or allowed == 0 then
      write = false
    else
      for i = 1, n do
        if kind[i] == 5 then
          if acquire then
            local exp = now + pb[i]
            if redis.call('ZADD', KEYS[kb + i], exp, leaseId) == 1 then st[i].size = st[i].size + 1 end
            if leaseExp == 0 or exp < leaseExp then leaseExp = exp end
            dirty[i] = true
          end
        else
          charge(i, cost)
          dirty[i] = true
        end
      end
    end
  elseif op == 'f' then
    for i = 1, n do
      if kind[i] ~= 5 then
        refund(i, cost)
        dirty[i] = true
      end
    end
  elseif op == 'c' then
    for i = 1, n do
      local o = obsAt + 3 * (i - 1)
      local rem, ol, reset = tonumber(ARGV[ab + o]), tonumber(ARGV[ab + o + 1]), tonumber(ARGV[ab + o + 2])
      if rem >= 0 or ol >= 0 or reset >= 0 then
        reconcile(i, rem >= 0 and rem or nil, reset >= 0 and reset or nil)
        dirty[i] = true
      end
    end
  elseif op == 'l' then
    for i = 1, n do
      if kind[i] == 5 then
        if redis.call('ZREM', KEYS[kb + i], leaseId) == 1 then st[i].size = st[i].size - 1 end
        dirty[i] = true
      end
    end
  elseif op == 'r' then
    for i = 1, n do
      if kind[i] == 5 and not redis.call('ZSCORE', KEYS[kb + i], leaseId) then allowed = 0 end
    end
    if allowed == 0 then
      write = false
    else
      for i = 1, n do
        if kind[i] == 5 then
          local exp = now + (renewTtl >= 0 and renewTtl or pb[i])
          redis.call('ZADD', KEYS[kb + i], 'XX', exp, leaseId)
          if leaseExp == 0 or exp < leaseExp then leaseExp = exp end
          dirty[i] = true
        end
      end
    end
  end

  -- A writing op rewrites every rate policy, as evaluate() does: loading a state caps it at the
  -- limit in force, and once a lower learned limit lapses that cap is what the policy refills
  -- from. Leaving an uncapped older state in place would refill from more than the reference.
  if write then
    for i = 1, n do
      if kind[i] ~= 5 then dirty[i] = true end
    end
  end

  -- ---- result and writes --------------------------------------------------------------------
  local result = { allowed, now, leaseExp, 0 }
  for i = 1, n do
    local o = 4 + 5 * (i - 1)
    local k, s, limit = kind[i], st[i], limits[i]
    if op == 'x' then
      result[o + 1] = configured(i)
      result[o + 2] = configured(i)
      result[o + 3] = now
      if existed[i] then redis.call('DEL', KEYS[kb + i]) end
      if k == 5 then redis.call('DEL', metaKey[i]) end
    else
      local remaining, resetAt, idle
      if k == 1 then
        local full = limit * pc[i]
        remaining = floor(s.x / pc[i])
        if s.x >= full then resetAt = max(now, s.at) else resetAt = s.at + ceil((full - s.x) / pb[i]) end
        idle = s.x >= full and s.at <= now
      elseif k == 2 then
        remaining = s.x
        if s.x >= limit then
          resetAt = now
        else
          resetAt = s.at + ceil((limit - s.x) / pb[i]) * pc[i]
        end
        idle = s.x >= limit
      elseif k == 3 then
        remaining = max(0, limit - s.count)
        resetAt = s.count <= 0 and now or s.endMs
        idle = s.count <= 0
      elseif k == 4 then
        remaining = max(0, limit - total(s))
        resetAt = #s.slots == 0 and now or (s.slots[#s.slots] + 1) * pc[i] + pb[i]
        idle = #s.slots == 0
      else
        remaining = max(0, limit - s.size)
        resetAt = latestLease(i)
        idle = s.size == 0
      end
      result[o + 1] = limit
      result[o + 2] = remaining
      result[o + 3] = resetAt
      if write and dirty[i] then
        if k == 5 then
          -- The sorted set lives until its last lease expires (an empty one is gone already);
          -- the learned limit lives in its own key until it lapses.
          if s.size > 0 then redis.call('PEXPIREAT', KEYS[kb + i], resetAt) end
          if op == 'c' and s.ll > 0 then
            redis.call('SET', metaKey[i], fmt('%d %d', s.ll, s.lu), 'PXAT', s.lu)
          end
        elseif idle and s.ll == 0 then
          if existed[i] then redis.call('DEL', KEYS[kb + i]) end
        else
          -- A bucket or pool held below capacity by a lower learned limit refills to it only after
          -- the lapse: the state outlives the lapse by a full refill, as in evaluate().
          local learnedDue = 0
          if s.ll > 0 then
            learnedDue = s.lu
            if k == 1 then
              learnedDue = s.lu + ceil(pa[i] * pc[i] / pb[i])
            elseif k == 2 then
              learnedDue = s.lu + ceil(pa[i] / pb[i]) * pc[i]
            end
          end
          local due = max(idle and now or resetAt, learnedDue)
          local v
          if k == 1 or k == 2 then
            v = fmt('%d %d %d %d', s.x, s.at, s.ll, s.lu)
          elseif k == 3 then
            v = fmt('%d %d %d %d %d', s.count, s.startMs, s.endMs, s.ll, s.lu)
          else
            local parts, prev = { fmt('%d %d', s.ll, s.lu) }, 0
            for j = 1, #s.slots do
              parts[#parts + 1] = fmt('%d %d', s.slots[j] - prev, s.counts[j])
              prev = s.slots[j]
            end
            v = table.concat(parts, ' ')
          end
          redis.call('SET', KEYS[kb + i], v, 'PXAT', due)
        end
      end
    end
    result[o + 4] = retries[i]
    result[o + 5] = retries[i] ~= 0 and 1 or 0
  end
  return result
end

-- Each decision runs under pcall: a failing one (another program's value at one of its keys)
-- reports its own error and leaves the rest of the batch decided.
local out, p, kAt = {}, 2, 0
for _ = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
  kb, ab = kAt, p + 1
  local ok, res = pcall(decide)
  if ok then
    out[#out + 1] = #res
    for j = 1, #res do out[#out + 1] = res[j] end
  else
    out[#out + 1] = -1
    out[#out + 1] = type(res) == 'table' and (res.err or 'script error') or tostring(res)
  end
  p = p + 2 + na
  kAt = kAt + nk
end
return out
