-- sluice: whole decisions (every policy, every op), a batch of them per script call.
-- Mirrors evaluate() in @sluice/core/store: same formulas, same operation order, IEEE doubles on
-- both sides, so results are identical for the same state and clock. The script is assembled
-- (script.ts) from this file and the modules it includes: the clock (clock.lua), one module
-- per policy kind (kinds/<kind>.lua: its decode, bring to now, check, charge, refund,
-- reconcile, answer and encode), and for a script per sequence of kinds its common take,
-- generated from those modules (common-take.ts). This file parses the layouts, runs the batch,
-- reads and writes the shared keys and packs the answer; it knows no kind's formulas.
--
-- State layout: the policies of one key that share a scope share ONE string key, the "scope
-- key" (the policy's state key without its `:<policy name>` segment, so it keeps the hash tag).
-- Its value is a list of binary entries (struct.pack, little endian), one per policy name:
--   I4 name length, name, B kind code, d due (epoch ms; the entry counts up to then, as a key
--   up to its PXAT), I4 payload length, payload (each kind module describes its own).
-- Entries of names this decision does not know (another limiter under the same prefix) are
-- kept as they are; the key expires (PXAT) with its latest entry and is deleted when empty.
-- An entry of another kind under a policy's name is stale: that policy starts from default.
--
-- ARGV[1] decision count, ARGV[2] layout count, ARGV[3] answer form ('b' binary, 'i' integers),
-- ARGV[4] the batch's deadline (epoch ms on this clock, the earliest of its decisions'; 0: none),
-- then the layouts, then the decisions.
-- A layout (shared by every decision of one limiter and key shape): n, u (scope keys), then per
-- policy: kind code, its parameters in the kinds table's order (three places, unused ones 0),
-- name, scope index (1..u).
-- A decision: -L alone for the common one (a take of cost 1 with layout L, no lease, no window
-- bounds); otherwise its argument count, then A[1..]: A[1] layout index, A[2] op (the op codes
-- of @sluice/core/store: t take, a take and acquire, p peek, f refund, c reconcile, l release,
-- r renew, x reset), A[3] cost, and only when needed: A[4] lease id, A[5] ttl ms (renew: -1 =
-- each policy's leaseTtl; reconcile: learned-limit ttl), A[6] index of the window-bounds
-- section (0: none), A[7..] for reconcile 3 per policy: remaining, limit, resetAtMs (-1: not
-- observed); at A[6], per policy: m, then m sorted window starts. Its keys, next in KEYS: the u
-- scope keys, then the lease set of each policy of a kind that holds leases, in policy order.
--
-- Answer: the store clock, then per decision: allowed (0 or 1; -2: now lies outside its window
-- bounds, nothing applied, every other value 0), lease expiry, and per policy:
-- limit, remaining, resetAt minus the clock, retryAfterMs; or 2 (an admitted common take) and
-- per policy remaining and resetAt minus the clock (its limit is the layout's, no retry, no
-- lease); or -1 and the number of an error message.

local KEYS, ARGV = KEYS, ARGV
local call, pcall, tonumber, tostring, type = redis.call, pcall, tonumber, tostring, type
local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local spack, sunpack, unpack = struct.pack, struct.unpack, unpack
local rep = string.rep
local concat, tinsert, tremove = table.concat, table.insert, table.remove
local find = string.find

-- @include clock
-- @include lease-kinds

-- ---- layouts ----------------------------------------------------------------------------------
-- What every decision needs: Ln[L] policies, Lnk[L] keys of a decision, Lat[L] where layout L
-- starts in ARGV. The rest is read by the common take and the general path when they first run.
local Ln, Lnk, Lat = {}, {}, {}
local p = 5
for L = 1, tonumber(ARGV[2]) do
  local n, nk = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
  Lat[L] = p
  -- A policy that holds leases has one more key: its lease set.
  for q = p + 2, p + 6 * n - 4, 6 do
    if LEASE_KINDS[ARGV[q]] then nk = nk + 1 end
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

-- The calendar window around now from the decision's bounds for policy i, when it has a list
-- that covers now; nil otherwise.
local function calendarWindow(i)
  if boundsAt == 0 then return nil end
  -- Walk the bounds section to policy i's list.
  local at = boundsAt
  for _ = 1, i - 1 do at = at + 1 + tonumber(ARGV[ab + at]) end
  local m = tonumber(ARGV[ab + at])
  if m >= 2 and now >= tonumber(ARGV[ab + at + 1]) and now < tonumber(ARGV[ab + at + m]) then
    for j = 1, m - 1 do
      local startMs, endMs = tonumber(ARGV[ab + at + j]), tonumber(ARGV[ab + at + j + 1])
      if startMs <= now and now < endMs then return startMs, endMs end
    end
  end
  return nil
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
    call('SET', key, value, 'PXAT', due + expiryShiftMs)
  end
end

-- ---- the common take --------------------------------------------------------------------------
-- A script made for one sequence of kinds has its common take here (common-take.ts writes it
-- from the kind modules' take functions): a take without a lease, of cost 1 or more, on a key
-- whose policies share one scope key, every entry in its usual shape, answered in one pass with
-- one read and one write; it answers true, or false having written nothing.
local fastTake = false
-- @include common-take

-- ---- the general path -------------------------------------------------------------------------
-- Every op and every state. Its closures are built when a batch first needs them: building them
-- costs a script call about as much as a few common takes, which a batch of those never pays.
local function buildGeneral()
  -- Each policy's learned limit as read, then as in force (indexes 1..n of the decision).
  local learnedLimit, learnedLimitUntilMs = {}, {}

  -- @include kinds
  -- @include kind-registry

  -- Every layout, whole: per policy its kind module, its parameters by name (and the start of
  -- its entry: name length, name, kind code), its scope key index.
  local Lu, Lmodules, Lpolicies, Lscope, Lmap, Lrate = {}, {}, {}, {}, {}, {}
  -- Lseq[L][j]: the policies of scope key j in policy order (the order their entries are written).
  local Lseq = {}
  for L = 1, tonumber(ARGV[2]) do
    local p = Lat[L]
    local n, u = tonumber(ARGV[p]), tonumber(ARGV[p + 1])
    p = p + 2
    local modules, policies, scope, map, rate, seq = {}, {}, {}, {}, {}, {}
    for j = 1, u do
      map[j] = {}
      seq[j] = {}
    end
    for i = 1, n do
      local code, name, j = tonumber(ARGV[p]), ARGV[p + 4], tonumber(ARGV[p + 5])
      local module = KIND[code]
      if not module then error('unknown policy kind ' .. tostring(code)) end
      local policy = { code = code, head = spack('<I4c0B', #name, name, code) }
      local params = KIND_PARAMS[code]
      for k = 1, #params do policy[params[k]] = tonumber(ARGV[p + k]) end
      -- Every kind's first parameter is its configured limit.
      policy.configuredLimit = tonumber(ARGV[p + 1])
      modules[i], policies[i], scope[i] = module, policy, j
      map[j][name] = i
      local sj = seq[j]
      sj[#sj + 1] = i
      if not module.holdsLeases then rate[j] = true end
      p = p + 6
    end
    Lu[L], Lmodules[L], Lpolicies[L], Lscope[L] = u, modules, policies, scope
    Lmap[L], Lrate[L], Lseq[L] = map, rate, seq
  end

  -- The decision's layout, whole.
  local n, u, modules, policies, pscope
  -- Per policy: LIM limit in force, RETRY retryAfterMs, FOUND[i] == stamp: a live entry was read.
  local LIM, RETRY, FOUND = {}, {}, {}
  local stamp = 0
  -- Per scope key: entries of other names (kept), the latest of their dues, whether the key
  -- existed, and the entries to write (BUF[j][1..BUFN[j]], BUFN[j] = -1: no rewrite), due DUE[j].
  local others, otherDue, sExisted, BUF, BUFN, DUE = {}, {}, {}, {}, {}, {}
  -- TTL[j]: the key's expiry as last written (the latest due of every entry it holds).
  local TTL = {}

  -- Reads scope key j: the live entries of this decision's policies go to their kind modules;
  -- other names' live entries are kept verbatim for the rewrite. Expired entries are dropped.
  local function loadScope(j, map, seq)
    others[j] = false
    otherDue[j] = 0
    local v = call('GET', KEYS[kb + j])
    sExisted[j] = v and true or false
    if not v then return end
    local pos, len, latest, e = 1, #v, 0, 1
    while pos <= len do
      local i = seq[e]
      local head = i and policies[i].head
      if head and find(v, head, pos, true) == pos then
        -- The next of this decision's entries, where it writes them.
        local due, payloadLength, at = sunpack('<dI4', v, pos + #head)
        if due >= now then
          modules[i].decode(i, v, at, payloadLength)
          FOUND[i] = stamp
        end
        if due > latest then latest = due end
        pos = at + payloadLength
        e = e + 1
      else
        local name, code, due, payloadLength, at = sunpack('<I4c0BdI4', v, pos)
        local nxt = at + payloadLength
        if due > latest then latest = due end
        if due >= now then
          i = map[name]
          if i == nil then
            local o = others[j]
            if not o then
              o = {}
              others[j] = o
            end
            o[#o + 1] = v:sub(pos, nxt - 1)
            if due > otherDue[j] then otherDue[j] = due end
          elseif code == policies[i].code then
            modules[i].decode(i, v, at, payloadLength)
            FOUND[i] = stamp
          end
        end
        pos = nxt
      end
    end
    TTL[j] = latest
  end

  -- ---- load (and check, for take and peek) --------------------------------------------------
  -- Brings every policy to now, as evaluate() does, and returns whether a take (peek: of cost 1)
  -- is admitted by all, with each policy's retryAfterMs in RETRY.
  local function loadAll()
    stamp = stamp + 1
    local map, seq = Lmap[L], Lseq[L]
    for j = 1, u do loadScope(j, map[j], seq[j]) end
    local checking = op == 't' or op == 'p'
    local c = op == 'p' and 1 or cost
    local allowed = 1
    local z = kb + u
    for i = 1, n do
      local module, policy = modules[i], policies[i]
      local found = FOUND[i] == stamp
      local ll, lu = 0, 0
      if found and learnedLimit[i] > 0 and now < learnedLimitUntilMs[i] then
        ll, lu = learnedLimit[i], learnedLimitUntilMs[i]
      end
      local limit = ll > 0 and ll or policy.configuredLimit
      if op == 'c' then
        local observed = tonumber(ARGV[ab + 7 + 3 * (i - 1) + 1])
        if observed >= 0 then
          ll, lu, limit = observed, now + ttl, observed
        end
      end
      learnedLimit[i], learnedLimitUntilMs[i], LIM[i] = ll, lu, limit
      local leaseSet
      if module.holdsLeases then
        z = z + 1
        leaseSet = KEYS[z]
      end
      module.load(i, policy, limit, found, leaseSet)
      local r = 0
      if checking then r = module.check(i, policy, limit, c) end
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
        local refund = modules[i].refund
        if refund then refund(i, policies[i], LIM[i], cost) end
      end
    elseif op == 'c' then
      for i = 1, n do
        local o = ab + 7 + 3 * (i - 1)
        local remaining, limit, resetAtMs = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
        local reconcile = modules[i].reconcile
        if reconcile and (remaining >= 0 or limit >= 0 or resetAtMs >= 0) then
          reconcile(i, policies[i], LIM[i], remaining >= 0 and remaining or nil, resetAtMs >= 0 and resetAtMs or nil)
        end
      end
    elseif op == 'l' then
      for i = 1, n do
        local release = modules[i].release
        if release then release(i) end
      end
    elseif op == 'r' then
      for i = 1, n do
        local holds = modules[i].holds
        if holds and not holds(i) then allowed = 0 end
      end
      if allowed == 0 then
        write = false
      else
        for i = 1, n do
          local renew = modules[i].renew
          if renew then
            local exp = renew(i, policies[i], ttl)
            if leaseExp == 0 or exp < leaseExp then leaseExp = exp end
          end
        end
      end
    end
    return allowed, leaseExp, write
  end

  -- Appends an entry (in up to three parts) to scope key j's rewrite.
  local function put(j, first, second, third)
    local buf, bn = BUF[j], BUFN[j] + 1
    if not buf then
      buf = {}
      BUF[j] = buf
    end
    buf[bn] = first
    if second then
      bn = bn + 1
      buf[bn] = second
    end
    if third then
      bn = bn + 1
      buf[bn] = third
    end
    BUFN[j] = bn
  end

  -- ---- charge (admitted take), result and writes --------------------------------------------
  -- A writing op rewrites every rate policy, as evaluate() does: loading a state caps it at the
  -- limit in force, and once a lower learned limit lapses that cap is what the policy refills
  -- from. Leaving an uncapped older state in place would refill from more than the reference.
  -- A lease-holding policy's learned limit changes only with reconcile (and reset).
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
      local module, policy, limit, j = modules[i], policies[i], LIM[i], pscope[i]
      local remaining, resetAt, idle
      if resetting then
        limit = policy.configuredLimit
        remaining, resetAt = limit, now
        if module.reset then module.reset(i) end
      else
        if charging then
          local exp = module.charge(i, policy, limit, cost)
          if exp and (leaseExp == 0 or exp < leaseExp) then leaseExp = exp end
        end
        remaining, resetAt, idle = module.answer(i, policy, limit, write)
        local ll = learnedLimit[i]
        if BUFN[j] >= 0 and not (idle and ll == 0) then
          -- Idle state kept for a learned limit lives until that lapses (for a bucket or a
          -- pool, until it has refilled after the lapse), as in evaluate().
          local due = idle and now or resetAt
          if ll > 0 then due = max(due, module.learnedDue(policy, learnedLimitUntilMs[i])) end
          put(j, module.encode(i, policy, due))
          if due > DUE[j] then DUE[j] = due end
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
    modules, policies, pscope = Lmodules[L], Lpolicies[L], Lscope[L]
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

-- Whether now lies within every bounds list of the decision (a list of fewer than two starts
-- asks nothing), as boundsCover() in core: a window taken from bounds around another present
-- would be the wrong one, and it is stored with the key.
local function boundsCoverNow()
  local at = boundsAt
  for _ = 1, Ln[L] do
    local m = tonumber(ARGV[ab + at])
    if m >= 2 and (now < tonumber(ARGV[ab + at + 1]) or now >= tonumber(ARGV[ab + at + m])) then
      return false
    end
    at = at + 1 + m
  end
  return true
end

-- The answer of a decision whose bounds miss now: -2 (BOUNDS_NEEDED in core), nothing applied,
-- every value 0 (resetAt goes relative to the clock, so -now).
local function askBounds()
  out[oc + 1] = -2
  out[oc + 2] = 0
  local r = oc + 3
  for _ = 1, Ln[L] do
    out[r], out[r + 1], out[r + 2], out[r + 3] = 0, 0, -now, 0
    r = r + 4
  end
  oc = r - 1
end

local general
local function decide()
  if boundsAt ~= 0 and not boundsCoverNow() then
    askBounds()
    return
  end
  if fastTake and op == 't' and not acquire and cost >= 1 and boundsAt == 0 and Lnk[L] == 1 and fastTake() then
    return
  end
  if not general then general = buildGeneral() end
  general()
end

-- Each decision runs under pcall: a failing one (another program's value at one of its keys)
-- reports its own error and leaves the rest of the batch decided.
local kAt, high, errs = 0, 1, {}
local deadline = tonumber(ARGV[4])
local late = deadline > 0 and now > deadline and ('SLUICE_DEADLINE ' .. now .. ' ' .. deadline)
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
  local ok, res
  if late then
    -- The callers stopped waiting (a timeout, a client replaying its queue after a restart):
    -- apply nothing, so nobody is charged for a decision already answered without us.
    ok, res = false, late
  else
    ok, res = pcall(decide)
  end
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
