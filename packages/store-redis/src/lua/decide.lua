-- sluice: whole decisions (every policy, every op), a batch of them per script call.
-- Mirrors evaluate() in @sluice/core (packages/core/src/math): same formulas, same operation
-- order, IEEE doubles on both sides, so results are identical for the same state and clock.
--
-- State layout: the policies of one key that share a scope share ONE string key, the "scope
-- key" (the policy's state key without its `:<policy name>` segment, so it keeps the hash tag).
-- Its value is a list of binary entries (struct.pack, little endian), one per policy name:
--   I4 name length, name, B kind, d due (epoch ms; the entry counts up to then, as a key up to its PXAT), I4 payload
--   length, payload:
--   1 tokenBucket: d units, d atMs, d ll, d lu      2 pool: d level, d anchorMs, d ll, d lu
--   3 fixedWindow: d count, d startMs, d endMs, d ll, d lu
--   4 slidingWindow: d ll, d lu, I4 m, then m times (d slot, d count), slots ascending, then
--     d total (the sum of the counts; an entry without it, 8 bytes shorter, is read too)
--   5 concurrency: d ll, d lu (its learned limit; the leases live in a sorted set)
-- Entries of names this decision does not know (another limiter under the same prefix) are
-- kept as they are; the key expires (PXAT) with its latest entry and is deleted when empty.
-- A concurrency policy's leases: a sorted set at its own state key, lease id -> expiry ms.
--
-- ARGV[1] decision count, ARGV[2] layout count, ARGV[3] answer form ('b' binary, 'i' integers),
-- then the layouts, then the decisions.
-- A layout (shared by every decision of one limiter and key shape): n, u (scope keys), then per
-- policy: kind, a, b, c, name, scope index (1..u).
--   1 tokenBucket (capacity, refillTokens, refillEveryMs)  2 pool (same)
--   3 fixedWindow (limit, windowMs, firstUse 1/0)  4 slidingWindow (limit, windowMs, precisionMs)
--   5 concurrency (limit, leaseTtlMs, 0)
-- A decision: -L alone for the common one (a take of cost 1 with layout L, no lease, no window
-- bounds); otherwise its argument count, then A[1..]: A[1] layout index, A[2] op (t take, a take
-- and acquire, p peek, f refund, c reconcile, l release, r renew, x reset), A[3] cost, and only
-- when needed: A[4] lease id, A[5] ttl ms (renew: -1 = each policy's leaseTtl; reconcile: learned-
-- limit ttl), A[6] index of the window-bounds section (0: none), A[7..] for reconcile 3 per
-- policy: remaining, limit, resetAtMs (-1: not observed); at A[6], per policy: m, then m sorted
-- window starts. Its keys, next in KEYS: the u scope keys, then the lease set of each
-- concurrency policy in policy order.
--
-- Two paths compute the same answers: fastTake (a take whose key is in its usual shape, written
-- with locals in one pass) and the general path (every op and every state), whose closures are
-- built only when a batch first needs them. The store may replace the part between the
-- fast-take marks with code generated for one sequence of policy kinds (fast-take.ts): the same
-- formulas, with one unpack and one pack per decision.
--
-- Answer: the store clock, then per decision: allowed (0 or 1), lease expiry, and per policy:
-- limit, remaining, resetAt minus the clock, retryAfterMs; or 2 (an admitted common take) and
-- per policy remaining and resetAt minus the clock (its limit is the layout's, no retry, no
-- lease); or -1 and the number of an error message.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local KEYS, ARGV = KEYS, ARGV
local call, pcall, tonumber, tostring, type = redis.call, pcall, tonumber, tostring, type
local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local spack, sunpack, unpack = struct.pack, struct.unpack, unpack
local rep = string.rep
local concat, tinsert, tremove = table.concat, table.insert, table.remove
local find = string.find

-- ---- layouts ----------------------------------------------------------------------------------
-- What every decision needs: Ln[L] policies, Lnk[L] keys of a decision, Lat[L] where layout L
-- starts in ARGV. The rest is read by the fast path and the general path when they first run.
local Ln, Lnk, Lat = {}, {}, {}
local p = 4
for L = 1, tonumber(ARGV[2]) do
  local n, nk = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
  Lat[L] = p
  -- A concurrency policy's lease set is one more key.
  for q = p + 2, p + 6 * n - 4, 6 do
    if ARGV[q] == '5' then nk = nk + 1 end
  end
  Ln[L], Lnk[L] = n, nk
  p = p + 2 + 6 * n
end

-- One decision's inputs, set by the loop at the end. The helpers read these upvalues, so a
-- batch allocates no closures per decision.
local kb, ab, L
local op, cost, acquire, leaseId, ttl, boundsAt
-- The answer; each decision writes its part at oc + 1.. (see the end of the script).
local out, oc = { now }, 1

-- The window fixed-window policy i (window w ms, firstUse 1/0) starts now: a first-use window
-- from now; a calendar window containing now from its bounds list when it has one that covers
-- now, else epoch-aligned windows of w.
local function windowOf(i, w, firstUse)
  if firstUse == 1 then return now, now + w end
  if boundsAt > 0 then
    -- Walk the bounds section to policy i's list.
    local at = boundsAt
    for _ = 1, i - 1 do at = at + 1 + tonumber(ARGV[ab + at]) end
    local m = tonumber(ARGV[ab + at])
    if m >= 2 and now >= tonumber(ARGV[ab + at + 1]) and now < tonumber(ARGV[ab + at + m]) then
      for j = 1, m - 1 do
        local b0, b1 = tonumber(ARGV[ab + at + j]), tonumber(ARGV[ab + at + j + 1])
        if b0 <= now and now < b1 then return b0, b1 end
      end
    end
  end
  local s = floor(now / w) * w
  return s, s + w
end

-- A pool's level and anchor brought to now (a full pool has anchor 0).
local function poolNow(x, at, limit, tokens, every)
  if x >= limit then return limit, 0 end
  if now >= at then
    local steps = floor((now - at) / every)
    x = x + steps * tokens
    at = at + steps * every
  end
  if x >= limit then return limit, 0 end
  return x, at
end

-- Writes scope key `key` (which existed when `existed`): `value` (nil: nothing to keep), due
-- `due`, the latest due of its entries; `was` is the key's expiry as read.
local function store(key, existed, value, due, was)
  if not value or due <= now then
    if existed then call('DEL', key) end
  elseif existed and due == was then
    -- The expiry it already has (SET with an expiry costs Redis about twice as much).
    call('SET', key, value, 'KEEPTTL')
  else
    call('SET', key, value, 'PXAT', due)
  end
end

-- ---- the common take ------------------------------------------------------------------------
-- <fast-take>
-- A take without a lease, of cost 1 or more, on a key whose policies share one scope key (no
-- concurrency policy, no calendar bounds), whose value holds exactly its entries in policy
-- order, none under a learned limit (a past-due entry reads as default, as in loadScope), every
-- sliding window with its total: the formulas of loadAll and finish, on locals, in one pass. It
-- answers only when every policy admits (in the short form: 2, then per policy remaining and
-- resetAt minus the clock); otherwise it returns false having written nothing, and decide()
-- takes the general path.
-- FL[L]: layout L's kinds, parameters and entry heads, read when a common take first uses it.
local FL, FBUF = {}, {}
local function fastLayout()
  local kind, pa, pb, pc, phead = {}, {}, {}, {}, {}
  local q = Lat[L] + 2
  for i = 1, Ln[L] do
    local k, name = tonumber(ARGV[q]), ARGV[q + 4]
    kind[i], pa[i] = k, tonumber(ARGV[q + 1])
    pb[i], pc[i] = tonumber(ARGV[q + 2]), tonumber(ARGV[q + 3])
    phead[i] = spack('<I4c0B', #name, name, k)
    q = q + 6
  end
  local f = { kind, pa, pb, pc, phead }
  FL[L] = f
  return f
end

local function fastTake()
  local f = FL[L] or fastLayout()
  local kind, pa, pb, pc, phead, n = f[1], f[2], f[3], f[4], f[5], Ln[L]
  local key = KEYS[kb + 1]
  local v = call('GET', key)
  if not v then return false end
  local pos, latest, due, r, c, fb = 1, 0, 0, oc + 2, cost, 0
  for i = 1, n do
    local head = phead[i]
    if find(v, head, pos, true) ~= pos then return false end
    local k, q, limit = kind[i], pos + #head, pa[i]
    local d, plen, remaining, resetAt
    if k == 1 then
      local x, at, ll
      d, plen, x, at, ll = sunpack('<dI4ddd', v, q)
      local per, rate = pc[i], pb[i]
      local full = limit * per
      if d < now then
        x, at = full, now
      else
        if ll ~= 0 then return false end
        if at < now then
          x = x + (now - at) * rate
          at = now
        end
        if x > full then x = full end
      end
      if c > limit or x < c * per then return false end
      x = x - c * per
      remaining = floor(x / per)
      if x >= full then
        resetAt = max(now, at)
      else
        resetAt = at + ceil((full - x) / rate)
      end
      -- Written unless back to full by now.
      if x < full or at > now then
        fb = fb + 1
        FBUF[fb] = spack('<c0dI4dddd', head, resetAt, 32, x, at, 0, 0)
        if resetAt > due then due = resetAt end
      end
    elseif k == 3 then
      local cnt, sms, ems, ll
      d, plen, cnt, sms, ems, ll = sunpack('<dI4dddd', v, q)
      if d >= now and ll ~= 0 then return false end
      if not (d >= now and cnt > 0 and now < ems) then
        sms, ems = windowOf(i, pb[i], pc[i])
        cnt = 0
      end
      if c > limit or cnt + c > limit then return false end
      cnt = cnt + c
      remaining = max(0, limit - cnt)
      resetAt = ems
      fb = fb + 1
      FBUF[fb] = spack('<c0dI4ddddd', head, ems, 40, cnt, sms, ems, 0, 0)
      if ems > due then due = ems end
    elseif k == 4 then
      local ll, lu, m, rr
      d, plen, ll, lu, m, rr = sunpack('<dI4ddI4', v, q)
      local t, last, lastCount = 0
      if d < now then
        m = 0
      else
        if ll ~= 0 or m == 0 or plen ~= 28 + 16 * m then return false end
        -- The latest slot and the total, which follows it; expired slots leave from the front.
        last, lastCount, t = sunpack('<ddd', v, rr + 16 * (m - 1))
        local minSlot = floor((now - pb[i]) / pc[i])
        while m > 0 do
          local first, firstCount = sunpack('<dd', v, rr)
          if first >= minSlot then break end
          t, rr, m = t - firstCount, rr + 16, m - 1
        end
      end
      if c > limit or t + c > limit then return false end
      local slot, count = floor(now / pc[i]), c
      if m > 0 then
        if last == slot then
          -- The latest pair leaves the kept range, its count raised.
          m = m - 1
          count = lastCount + c
        elseif last > slot then
          return false
        end
      end
      t = t + c
      remaining = max(0, limit - t)
      resetAt = (slot + 1) * pc[i] + pb[i]
      fb = fb + 1
      FBUF[fb] = spack('<c0dI4ddI4', head, resetAt, 44 + 16 * m, 0, 0, m + 1)
      if m > 0 then
        fb = fb + 1
        FBUF[fb] = v:sub(rr, rr + 16 * m - 1)
      end
      fb = fb + 1
      FBUF[fb] = spack('<ddd', slot, count, t)
      if resetAt > due then due = resetAt end
    else
      -- A pool.
      local x, at, ll
      d, plen, x, at, ll = sunpack('<dI4ddd', v, q)
      if d < now then
        x, at = limit, 0
      elseif ll ~= 0 then
        return false
      else
        x, at = poolNow(x, at, limit, pb[i], pc[i])
      end
      if c > limit or x < c then return false end
      if x >= limit then at = now end
      x = x - c
      remaining = x
      if x >= limit then
        resetAt = now
      else
        resetAt = at + ceil((limit - x) / pb[i]) * pc[i]
        fb = fb + 1
        FBUF[fb] = spack('<c0dI4dddd', head, resetAt, 32, x, at, 0, 0)
        if resetAt > due then due = resetAt end
      end
    end
    if d > latest then latest = d end
    pos = q + 12 + plen
    out[r] = remaining
    out[r + 1] = resetAt - now
    r = r + 2
  end
  if pos <= #v then return false end
  out[oc + 1] = 2
  oc = r - 1
  store(key, true, concat(FBUF, '', 1, fb), due, latest)
  return true
end
-- </fast-take>


-- ---- the general path ------------------------------------------------------------------------
-- Every op and every state. Its closures are built when a batch first needs them: building them
-- costs a script call about as much as a few common takes, which a batch of those never pays.
local function buildGeneral()
  -- Every layout, whole.
  local Lu, Lkind, La, Lb, Lc, Lhead, Lscope, Lmap, Lrate = {}, {}, {}, {}, {}, {}, {}, {}, {}
  -- Lseq[L][j]: the policies of scope key j in policy order (the order their entries are written).
  local Lseq = {}
  for L = 1, tonumber(ARGV[2]) do
    local p = Lat[L]
    local n, u = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
    p = p + 2
    local kind, a, b, c, head, scope, map, rate, seq = {}, {}, {}, {}, {}, {}, {}, {}, {}
    for j = 1, u do
      map[j] = {}
      seq[j] = {}
    end
    for i = 1, n do
      local k, name, j = tonumber(ARGV[p]), ARGV[p + 4], tonumber(ARGV[p + 5])
      kind[i] = k
      a[i] = tonumber(ARGV[p + 1])
      b[i] = tonumber(ARGV[p + 2])
      c[i] = tonumber(ARGV[p + 3])
      -- The start of the policy's entry: name length, name, kind.
      head[i] = spack('<I4c0B', #name, name, k)
      scope[i] = j
      map[j][name] = i
      local sj = seq[j]
      sj[#sj + 1] = i
      if k ~= 5 then rate[j] = true end
      p = p + 6
    end
    Lu[L], Lkind[L], La[L], Lb[L], Lc[L] = u, kind, a, b, c
    Lhead[L], Lscope[L], Lmap[L], Lrate[L], Lseq[L] = head, scope, map, rate, seq
  end

  -- The decision's layout, whole.
  local n, u, kind, pa, pb, pc, phead, pscope
  -- Per-policy state, reused by every decision of the batch (only indexes 1..n are read):
  -- X/AT tokenBucket units and time, pool level and anchor; CNT/SMS/EMS fixed window;
  -- SLOTS/COUNTS sliding window; SIZE concurrency (ZKEY its lease set); LL/LU learned limit;
  -- LIM limit in force; RETRY retryAfterMs; FOUND[i] == stamp: policy i had a live entry.
  local X, AT, CNT, SMS, EMS, SLOTS, COUNTS, SIZE, ZKEY = {}, {}, {}, {}, {}, {}, {}, {}, {}
  -- A sliding window read from an entry with its total is "packed" (PK[i]): its slots stay where
  -- they are in the value read, so a take neither unpacks nor repacks them one by one. The live
  -- pairs are RM[i] pairs of RV[i] from byte RR[i], then at most one more pair TS[i]/TC[i] (the
  -- slot a take charged); RT[i] is the total. slotTables(i) unpacks them into SLOTS/COUNTS for
  -- the rest (refund, reconcile, a refused take's retry time).
  local PK, RV, RR, RM, RT, TS, TC = {}, {}, {}, {}, {}, {}, {}
  local LL, LU, LIM, RETRY, FOUND = {}, {}, {}, {}, {}
  local stamp = 0
  -- Per scope key: entries of other names (kept), the latest of their dues, whether the key
  -- existed, and the entries to write (BUF[j][1..BUFN[j]], BUFN[j] = -1: no rewrite), due DUE[j].
  local others, otherDue, sExisted, BUF, BUFN, DUE = {}, {}, {}, {}, {}, {}
  -- TTL[j]: the key's expiry as last written (the latest due of every entry it holds).
  local TTL = {}


  -- ---- kind math ----------------------------------------------------------------------------
  local function total(i)
    if PK[i] then return RT[i] end
    local t, cs = 0, COUNTS[i]
    for j = 1, #cs do t = t + cs[j] end
    return t
  end

  -- A sliding window's m (slot, count) pairs from v at r, into SLOTS[i] and COUNTS[i].
  local function loadSlots(i, v, r, m)
    local slots, counts = {}, {}
    for s = 1, m do
      slots[s], counts[s], r = sunpack('<dd', v, r)
    end
    SLOTS[i], COUNTS[i] = slots, counts
  end

  -- Sliding window i's slots as tables (unpacks a packed window).
  local function slotTables(i)
    if not PK[i] then return end
    loadSlots(i, RV[i], RR[i], RM[i])
    local ts = TS[i]
    if ts then
      local slots = SLOTS[i]
      slots[#slots + 1] = ts
      COUNTS[i][#slots] = TC[i]
    end
    PK[i] = false
  end

  -- Reads sliding window i's slots (m pairs at r of v, plen the entry's payload length).
  local function readSlots(i, v, r, m, plen)
    if plen == 28 + 16 * m then
      PK[i], RV[i], RR[i], RM[i], TS[i] = true, v, r, m, nil
      RT[i] = sunpack('<d', v, r + 16 * m)
    else
      PK[i] = false
      loadSlots(i, v, r, m)
    end
  end

  -- Charges c at slot of packed window i, when slot is its latest (or after it); false otherwise.
  local function chargePacked(i, slot, c)
    local m, count = RM[i], c
    if TS[i] then return false end
    if m > 0 then
      local last, cnt = sunpack('<dd', RV[i], RR[i] + 16 * (m - 1))
      if last == slot then
        -- The latest pair moves out of the byte range, with its count raised.
        RM[i] = m - 1
        count = cnt + c
      elseif last > slot then
        return false
      end
    end
    TS[i], TC[i] = slot, count
    RT[i] = RT[i] + c
    return true
  end

  local function addToSlot(i, slot, c)
    local slots, counts = SLOTS[i], COUNTS[i]
    local j = #slots
    while j >= 1 and slots[j] > slot do j = j - 1 end
    if j >= 1 and slots[j] == slot then
      counts[j] = counts[j] + c
    else
      tinsert(slots, j + 1, slot)
      tinsert(counts, j + 1, c)
    end
  end

  local function refund(i, c)
    local k, limit = kind[i], LIM[i]
    if k == 1 then
      X[i] = min(limit * pc[i], X[i] + c * pc[i])
    elseif k == 2 then
      X[i] = min(limit, X[i] + c)
      if X[i] >= limit then AT[i] = 0 end
    elseif k == 3 then
      CNT[i] = max(0, CNT[i] - c)
    elseif k == 4 then
      slotTables(i)
      local slots, counts = SLOTS[i], COUNTS[i]
      local j = #slots
      while j >= 1 and c > 0 do
        local take = min(c, counts[j])
        counts[j] = counts[j] - take
        c = c - take
        if counts[j] == 0 then
          tremove(slots, j)
          tremove(counts, j)
        end
        j = j - 1
      end
    end
  end

  local function reconcile(i, rem, reset)
    local k, limit = kind[i], LIM[i]
    if k == 1 then
      if rem then X[i] = min(X[i], rem * pc[i]) end
      if reset and reset > now and reset > AT[i] then AT[i] = reset end
    elseif k == 2 then
      if rem and rem < X[i] then
        if X[i] >= limit then AT[i] = now end
        X[i] = rem
      end
      if reset and reset > now and X[i] < limit then AT[i] = max(AT[i], reset - pc[i]) end
    elseif k == 3 then
      if reset and reset > now then EMS[i] = reset end
      if rem then CNT[i] = max(CNT[i], limit - rem) end
    elseif k == 4 then
      if not rem then return end
      local deficit = limit - rem - total(i)
      if deficit <= 0 then return end
      slotTables(i)
      local slot = floor(now / pc[i])
      if reset and reset > now then
        slot = max(ceil((reset - pb[i]) / pc[i]) - 1, floor((now - pb[i]) / pc[i]))
      end
      addToSlot(i, slot, deficit)
    end
  end

  -- Latest lease expiry of a concurrency policy (now when it holds none).
  local function latestLease(i)
    if SIZE[i] == 0 then return now end
    local last = call('ZRANGE', ZKEY[i], -1, -1, 'WITHSCORES')
    return max(now, tonumber(last[2]))
  end

  -- Reads scope key j: the live entries of this decision's policies land in X, AT, ...; other
  -- names' live entries are kept verbatim for the rewrite. Expired entries are dropped, and an
  -- entry of another kind under a policy's name is stale: that policy starts from default.
  local function loadScope(j, map, seq)
    others[j] = false
    otherDue[j] = 0
    local v = call('GET', KEYS[kb + j])
    sExisted[j] = v and true or false
    if not v then return end
    local pos, len, latest, e = 1, #v, 0, 1
    while pos <= len do
      local i = seq[e]
      local head = i and phead[i]
      if head and find(v, head, pos, true) == pos then
        -- The next of this decision's entries, where it writes them: one read for the rest.
        local k, q, due, plen = kind[i], pos + #head
        if k == 1 or k == 2 then
          local x, at, ll, lu
          due, plen, x, at, ll, lu = sunpack('<dI4dddd', v, q)
          if due >= now then X[i], AT[i], LL[i], LU[i] = x, at, ll, lu end
        elseif k == 3 then
          local cnt, sms, ems, ll, lu
          due, plen, cnt, sms, ems, ll, lu = sunpack('<dI4ddddd', v, q)
          if due >= now then CNT[i], SMS[i], EMS[i], LL[i], LU[i] = cnt, sms, ems, ll, lu end
        elseif k == 4 then
          local ll, lu, m, r
          due, plen, ll, lu, m, r = sunpack('<dI4ddI4', v, q)
          if due >= now then
            LL[i], LU[i] = ll, lu
            readSlots(i, v, r, m, plen)
          end
        else
          local ll, lu
          due, plen, ll, lu = sunpack('<dI4dd', v, q)
          if due >= now then LL[i], LU[i] = ll, lu end
        end
        if due >= now then FOUND[i] = stamp end
        if due > latest then latest = due end
        pos = q + 12 + plen
        e = e + 1
      else
        local nm, k, due, plen, q = sunpack('<I4c0BdI4', v, pos)
        local nxt = q + plen
        if due > latest then latest = due end
        if due >= now then
          i = map[nm]
          if i == nil then
            local o = others[j]
            if not o then
              o = {}
              others[j] = o
            end
            o[#o + 1] = v:sub(pos, nxt - 1)
            if due > otherDue[j] then otherDue[j] = due end
          elseif k == kind[i] then
            FOUND[i] = stamp
            if k == 1 or k == 2 then
              X[i], AT[i], LL[i], LU[i] = sunpack('<dddd', v, q)
            elseif k == 3 then
              CNT[i], SMS[i], EMS[i], LL[i], LU[i] = sunpack('<ddddd', v, q)
            elseif k == 4 then
              local ll, lu, m, r = sunpack('<ddI4', v, q)
              LL[i], LU[i] = ll, lu
              readSlots(i, v, r, m, plen)
            else
              LL[i], LU[i] = sunpack('<dd', v, q)
            end
          end
        end
        pos = nxt
      end
    end
    TTL[j] = latest
  end

  -- ---- load (and check, for take and peek) --------------------------------------------------
  -- Brings every policy to now, as evaluate()'s load does, and returns whether a take (peek: of
  -- cost 1) is admitted by all, with each policy's retryAfterMs in RETRY.
  local function loadAll()
    stamp = stamp + 1
    local map, seq = Lmap[L], Lseq[L]
    for j = 1, u do loadScope(j, map[j], seq[j]) end
    local checking = op == 't' or op == 'p'
    local c = op == 'p' and 1 or cost
    local allowed = 1
    local z = kb + u
    for i = 1, n do
      local k = kind[i]
      local found = FOUND[i] == stamp
      local ll, lu = 0, 0
      if found and LL[i] > 0 and now < LU[i] then ll, lu = LL[i], LU[i] end
      local limit = ll > 0 and ll or pa[i]
      if op == 'c' then
        local ol = tonumber(ARGV[ab + 7 + 3 * (i - 1) + 1])
        if ol >= 0 then
          ll, lu, limit = ol, now + ttl, ol
        end
      end
      LL[i], LU[i], LIM[i] = ll, lu, limit
      local r = 0
      if k == 1 then
        local full = limit * pc[i]
        local x, at = full, now
        if found then
          x, at = X[i], AT[i]
          if at < now then
            x = x + (now - at) * pb[i]
            at = now
          end
          if x > full then x = full end
        else
          x = full
        end
        X[i], AT[i] = x, at
        if checking then
          if c > limit then
            r = -1
          else
            local need = c * pc[i]
            if x < need then r = at - now + ceil((need - x) / pb[i]) end
          end
        end
      elseif k == 3 then
        local cnt, ems = CNT[i], EMS[i]
        if not (found and cnt > 0 and now < ems) then
          local sms
          sms, ems = windowOf(i, pb[i], pc[i])
          cnt = 0
          CNT[i], SMS[i], EMS[i] = 0, sms, ems
        end
        if checking then
          if c > limit then
            r = -1
          elseif cnt + c > limit then
            r = ems - now
          end
        end
      elseif k == 4 then
        if not found then
          PK[i] = false
          SLOTS[i], COUNTS[i] = {}, {}
        elseif PK[i] then
          -- Expired pairs leave the front of the byte range.
          local minSlot = floor((now - pb[i]) / pc[i])
          local v, rr, rm, t = RV[i], RR[i], RM[i], RT[i]
          while rm > 0 do
            local slot, cnt = sunpack('<dd', v, rr)
            if slot >= minSlot then break end
            t, rr, rm = t - cnt, rr + 16, rm - 1
          end
          RR[i], RM[i], RT[i] = rr, rm, t
        else
          local slots, counts = SLOTS[i], COUNTS[i]
          local minSlot = floor((now - pb[i]) / pc[i])
          local drop = 0
          while drop < #slots and slots[drop + 1] < minSlot do drop = drop + 1 end
          if drop > 0 then
            local ks, kc = {}, {}
            for j = drop + 1, #slots do
              ks[#ks + 1] = slots[j]
              kc[#kc + 1] = counts[j]
            end
            SLOTS[i], COUNTS[i] = ks, kc
          end
        end
        if checking then
          if c > limit then
            r = -1
          else
            local count = total(i)
            if count + c > limit then
              local excess = count + c - limit
              slotTables(i)
              local slots, counts = SLOTS[i], COUNTS[i]
              r = -1
              for j = 1, #slots do
                excess = excess - counts[j]
                if excess <= 0 then
                  r = (slots[j] + 1) * pc[i] + pb[i] - now
                  break
                end
              end
            end
          end
        end
      elseif k == 2 then
        local x, at = limit, 0
        if found then x, at = poolNow(X[i], AT[i], limit, pb[i], pc[i]) end
        X[i], AT[i] = x, at
        if checking then
          if c > limit then
            r = -1
          elseif x < c then
            r = at + ceil((c - x) / pb[i]) * pc[i] - now
          end
        end
      else
        z = z + 1
        local zk = KEYS[z]
        ZKEY[i] = zk
        -- Expired leases of a crashed holder go here, whoever calls next.
        call('ZREMRANGEBYSCORE', zk, '-inf', now)
        local size = call('ZCARD', zk)
        SIZE[i] = size
        -- Checked only by a take that acquires; not against the cost.
        if checking and acquire and size >= limit then
          local first = call('ZRANGE', zk, 0, 0, 'WITHSCORES')
          r = max(1, tonumber(first[2]) - now)
        end
      end
      RETRY[i] = r
      if r ~= 0 then allowed = 0 end
    end
    return allowed
  end

  -- ---- ops other than take and peek ---------------------------------------------------------
  local function operate(allowed)
    local leaseExp, write = 0, true
    if op == 'f' then
      for i = 1, n do
        if kind[i] ~= 5 then refund(i, cost) end
      end
    elseif op == 'c' then
      for i = 1, n do
        local o = ab + 7 + 3 * (i - 1)
        local rem, ol, reset = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
        if rem >= 0 or ol >= 0 or reset >= 0 then
          reconcile(i, rem >= 0 and rem or nil, reset >= 0 and reset or nil)
        end
      end
    elseif op == 'l' then
      for i = 1, n do
        if kind[i] == 5 and call('ZREM', ZKEY[i], leaseId) == 1 then SIZE[i] = SIZE[i] - 1 end
      end
    elseif op == 'r' then
      for i = 1, n do
        if kind[i] == 5 and not call('ZSCORE', ZKEY[i], leaseId) then allowed = 0 end
      end
      if allowed == 0 then
        write = false
      else
        for i = 1, n do
          if kind[i] == 5 then
            local exp = now + (ttl >= 0 and ttl or pb[i])
            call('ZADD', ZKEY[i], 'XX', exp, leaseId)
            if leaseExp == 0 or exp < leaseExp then leaseExp = exp end
          end
        end
      end
    end
    return allowed, leaseExp, write
  end

  -- Appends an entry to scope key j's rewrite.
  local function put(j, e)
    local buf, bn = BUF[j], BUFN[j] + 1
    if not buf then
      buf = {}
      BUF[j] = buf
    end
    buf[bn] = e
    BUFN[j] = bn
  end

  -- ---- charge (admitted take), result and writes --------------------------------------------
  -- A writing op rewrites every rate policy, as evaluate() does: loading a state caps it at the
  -- limit in force, and once a lower learned limit lapses that cap is what the policy refills
  -- from. Leaving an uncapped older state in place would refill from more than the reference.
  -- A concurrency policy's learned limit changes only with reconcile (and reset).
  local function finish(allowed, leaseExp, write)
    local charging = op == 't' and write
    local resetting = op == 'x'
    local rate, every = Lrate[L], op == 'c' or resetting
    for j = 1, u do
      BUFN[j] = (write and (every or rate[j])) and 0 or -1
      DUE[j] = otherDue[j]
    end
    local r = oc + 3
    for i = 1, n do
      local k, limit, j = kind[i], LIM[i], pscope[i]
      local rewrite = BUFN[j] >= 0
      local remaining, resetAt
      if resetting then
        limit, remaining, resetAt = pa[i], pa[i], now
        if k == 5 and SIZE[i] > 0 then call('DEL', ZKEY[i]) end
      elseif k == 1 then
        local per, x, at, ll = pc[i], X[i], AT[i], LL[i]
        if charging then x = x - cost * per end
        local full = limit * per
        remaining = floor(x / per)
        local idle = false
        if x >= full then
          resetAt = max(now, at)
          idle = at <= now
        else
          resetAt = at + ceil((full - x) / pb[i])
        end
        if rewrite and not (idle and ll == 0) then
          -- A bucket held below capacity by a lower learned limit refills to it only after the
          -- lapse: the state outlives the lapse by a full refill, as in evaluate().
          local d = idle and now or resetAt
          if ll > 0 then d = max(d, LU[i] + ceil(pa[i] * per / pb[i])) end
          put(j, spack('<c0dI4dddd', phead[i], d, 32, x, at, ll, LU[i]))
          if d > DUE[j] then DUE[j] = d end
        end
      elseif k == 3 then
        local cnt, ll = CNT[i], LL[i]
        if charging then cnt = cnt + cost end
        remaining = max(0, limit - cnt)
        local idle = cnt <= 0
        resetAt = idle and now or EMS[i]
        if rewrite and not (idle and ll == 0) then
          local d = max(resetAt, ll > 0 and LU[i] or 0)
          put(j, spack('<c0dI4ddddd', phead[i], d, 40, cnt, SMS[i], EMS[i], ll, LU[i]))
          if d > DUE[j] then DUE[j] = d end
        end
      elseif k == 4 then
        if charging then
          local slot = floor(now / pc[i])
          if not (PK[i] and chargePacked(i, slot, cost)) then
            slotTables(i)
            addToSlot(i, slot, cost)
          end
        end
        local packed, ll, t = PK[i], LL[i], total(i)
        local m, last
        if packed then
          local rm = RM[i]
          m, last = rm, TS[i]
          if last then
            m = rm + 1
          elseif rm > 0 then
            last = sunpack('<d', RV[i], RR[i] + 16 * (rm - 1))
          end
        else
          m = #SLOTS[i]
          last = SLOTS[i][m]
        end
        remaining = max(0, limit - t)
        local idle = m == 0
        resetAt = idle and now or (last + 1) * pc[i] + pb[i]
        if rewrite and not (idle and ll == 0) then
          local d = max(resetAt, ll > 0 and LU[i] or 0)
          local top = spack('<c0dI4ddI4', phead[i], d, 28 + 16 * m, ll, LU[i], m)
          if packed then
            -- The live byte range as it was read, then the charged pair, then the total (three
            -- parts of the rewrite: joining them here would copy the range once more).
            local rr, rm = RR[i], RM[i]
            put(j, top)
            if rm > 0 then put(j, RV[i]:sub(rr, rr + 16 * rm - 1)) end
            if TS[i] then
              put(j, spack('<ddd', TS[i], TC[i], t))
            else
              put(j, spack('<d', t))
            end
          else
            local slots, counts = SLOTS[i], COUNTS[i]
            local parts = { top }
            for s = 1, m do parts[s + 1] = spack('<dd', slots[s], counts[s]) end
            parts[m + 2] = spack('<d', t)
            put(j, concat(parts))
          end
          if d > DUE[j] then DUE[j] = d end
        end
      elseif k == 2 then
        local x, at, ll = X[i], AT[i], LL[i]
        if charging then
          if x >= limit then at = now end
          x = x - cost
        end
        remaining = x
        local idle = x >= limit
        if idle then
          resetAt = now
        else
          resetAt = at + ceil((limit - x) / pb[i]) * pc[i]
        end
        if rewrite and not (idle and ll == 0) then
          local d = idle and now or resetAt
          if ll > 0 then d = max(d, LU[i] + ceil(pa[i] / pb[i]) * pc[i]) end
          put(j, spack('<c0dI4dddd', phead[i], d, 32, x, at, ll, LU[i]))
          if d > DUE[j] then DUE[j] = d end
        end
      else
        if charging and acquire then
          local exp = now + pb[i]
          if call('ZADD', ZKEY[i], exp, leaseId) == 1 then SIZE[i] = SIZE[i] + 1 end
          if leaseExp == 0 or exp < leaseExp then leaseExp = exp end
        end
        remaining = max(0, limit - SIZE[i])
        resetAt = latestLease(i)
        -- The sorted set lives until its last lease expires (an empty one is gone already).
        if write and SIZE[i] > 0 and (acquire or op == 'l' or op == 'r') then
          call('PEXPIREAT', ZKEY[i], resetAt)
        end
        local ll = LL[i]
        if rewrite and ll > 0 then
          local d = LU[i]
          put(j, spack('<c0dI4dd', phead[i], d, 16, ll, d))
          if d > DUE[j] then DUE[j] = d end
        end
      end
      out[r] = limit
      out[r + 1] = remaining
      out[r + 2] = resetAt - now
      out[r + 3] = RETRY[i]
      r = r + 4
    end
    out[oc + 1] = allowed
    out[oc + 2] = leaseExp
    oc = r - 1
    for j = 1, u do
      local bn = BUFN[j]
      if bn >= 0 then
        local buf, o = BUF[j], others[j]
        if o then
          if not buf then
            buf = {}
            BUF[j] = buf
          end
          for x = 1, #o do buf[bn + x] = o[x] end
          bn = bn + #o
        end
        store(KEYS[kb + j], sExisted[j], bn > 0 and concat(buf, '', 1, bn) or nil, DUE[j], TTL[j])
      end
    end
  end

  return function()
    n, u = Ln[L], Lu[L]
    kind, pa, pb, pc, phead, pscope = Lkind[L], La[L], Lb[L], Lc[L], Lhead[L], Lscope[L]
    local allowed = loadAll()
    if op == 't' then
      finish(allowed, 0, allowed == 1)
    elseif op == 'p' then
      finish(allowed, 0, false)
    else
      finish(operate(1))
    end
  end
end

local general
local function decide()
  if op == 't' and not acquire and cost >= 1 and boundsAt == 0 and Lnk[L] == 1 and fastTake() then
    return
  end
  if not general then general = buildGeneral() end
  general()
end

-- Each decision runs under pcall: a failing one (another program's value at one of its keys)
-- reports its own error and leaves the rest of the batch decided.
local kAt, high, errs = 0, 1, {}
for _ = 1, tonumber(ARGV[1]) do
  -- a: -L (the common take), or the decision's argument count.
  local a = tonumber(ARGV[p])
  kb, ab = kAt, p
  if a < 0 then
    L, op, cost, acquire, leaseId, ttl, boundsAt = -a, 't', 1, false, '', -1, 0
    p = p + 1
  else
    L, op, cost = tonumber(ARGV[p + 1]), ARGV[p + 2], tonumber(ARGV[p + 3])
    acquire = op == 'a'
    if acquire then op = 't' end
    if a > 3 then
      leaseId, ttl, boundsAt = ARGV[p + 4], tonumber(ARGV[p + 5]), tonumber(ARGV[p + 6])
    else
      leaseId, ttl, boundsAt = '', -1, 0
    end
    p = p + 1 + a
  end
  local start = oc
  local ok, res = pcall(decide)
  if not ok then
    -- It may have written part of its answer: those places are cleared below.
    local wrote = start + 2 + 4 * (Ln[L] or 0)
    if wrote > high then high = wrote end
    errs[#errs + 1] = type(res) == 'table' and (res.err or 'script error') or tostring(res)
    out[start + 1] = -1
    out[start + 2] = #errs
    oc = start + 2
  end
  -- The decision's key count comes from its layout.
  kAt = kAt + Lnk[L]
end
for x = oc + 1, high do out[x] = nil end
-- The error messages follow the numbers. ARGV[3] 'b': the numbers as one string of doubles
-- (little endian), far cheaper for Redis to send and for the client to read than integers.
if ARGV[3] ~= 'b' then
  for e = 1, #errs do out[oc + e] = errs[e] end
  return out
end
local parts = {}
for a = 1, oc, 256 do
  local b = min(oc, a + 255)
  parts[#parts + 1] = spack('<' .. rep('d', b - a + 1), unpack(out, a, b))
end
-- (Joining one part would copy it, and Redis' Lua hashes every byte of a new string.)
local reply = { #parts == 1 and parts[1] or concat(parts) }
for e = 1, #errs do reply[e + 1] = errs[e] end
return reply
