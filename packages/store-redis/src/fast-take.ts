/**
 * The common take, written out for one sequence of policy kinds.
 *
 * decide.lua's own `fastTake` walks a key's policies in a loop: per policy it dispatches on the
 * kind, unpacks the entry, and packs a new one, and the pieces are joined at the end. For a
 * layout whose kinds are known, the same formulas can run straight through: one unpack of every
 * entry up to (and including) each sliding window's header, one pack of the whole value. That
 * code is generated here and replaces the part of decide.lua between its fast-take marks; the
 * store sends a layout's decisions to the script made for its kinds.
 *
 * The generated function answers exactly as decide.lua's `fastTake` does or declines (returns
 * false having written nothing), and decide() then takes the general path. It declines wherever
 * `fastTake` does, and also on an entry whose payload length is not the current format's.
 */

/** Kind codes as the script knows them (see KIND_CODE in index.ts). */
const TOKEN_BUCKET = 1;
const POOL = 2;
const FIXED_WINDOW = 3;
const SLIDING_WINDOW = 4;

/** Most policies a generated common take handles; longer layouts use the loop. */
export const MAX_FAST_POLICIES = 6;

const START = "-- <fast-take>\n";
const END = "-- </fast-take>\n";

/** Whether `kinds` (script kind codes) can have a common take of its own. */
export function hasFastTake(kinds: readonly number[]): boolean {
  return (
    kinds.length >= 1 &&
    kinds.length <= MAX_FAST_POLICIES &&
    kinds.every(
      (k) => k === TOKEN_BUCKET || k === POOL || k === FIXED_WINDOW || k === SLIDING_WINDOW,
    )
  );
}

/** `script` (decide.lua) with its common take written out for `kinds`. */
export function withFastTake(script: string, kinds: readonly number[]): string {
  const from = script.indexOf(START);
  const to = script.indexOf(END);
  if (from < 0 || to < from || script.indexOf(START, from + 1) >= 0) {
    throw new Error("decide.lua has no single fast-take section");
  }
  return script.slice(0, from) + START + fastTakeLua(kinds) + script.slice(to);
}

/** Payload bytes an entry of `kind` has before any sliding-window slots. */
function fixedPayload(kind: number): number {
  return kind === FIXED_WINDOW ? 40 : kind === SLIDING_WINDOW ? 20 : 32;
}

/** What one entry's unpack yields, after its head (`h`): due, payload length, payload. */
function readVars(kind: number, i: number): string[] {
  const v = (name: string) => `${name}${i}`;
  switch (kind) {
    case FIXED_WINDOW:
      return [v("h"), v("d"), v("l"), v("cnt"), v("sms"), v("ems"), v("ll"), v("lu")];
    case SLIDING_WINDOW:
      return [v("h"), v("d"), v("l"), v("ll"), v("lu"), v("m")];
    default:
      return [v("h"), v("d"), v("l"), v("x"), v("at"), v("ll"), v("lu")];
  }
}

function readFormat(kind: number): string {
  return kind === FIXED_WINDOW ? "dI4ddddd" : kind === SLIDING_WINDOW ? "dI4ddI4" : "dI4dddd";
}

function writeFormat(kind: number): string {
  return kind === FIXED_WINDOW
    ? "c0dI4ddddd"
    : kind === SLIDING_WINDOW
      ? "c0dI4ddI4c0ddd"
      : "c0dI4dddd";
}

/**
 * Parameters of policy i (1-based) in the layout table q: a, b, c at 3i-2..3i, the head at
 * 3n+i, then per segment its unpack format and its fixed byte count.
 */
function checks(kind: number, i: number, n: number): string {
  const a = `q[${3 * i - 2}]`;
  const b = `q[${3 * i - 1}]`;
  const c = `q[${3 * i}]`;
  const head = `q[${3 * n + i}]`;
  switch (kind) {
    case TOKEN_BUCKET:
      return `  -- ${i}: token bucket
  if h${i} ~= ${head} or l${i} ~= 32 then return false end
  local limit${i}, per${i}, rate${i} = ${a}, ${c}, ${b}
  local full${i} = limit${i} * per${i}
  if d${i} < now then
    x${i}, at${i} = full${i}, now
  else
    if ll${i} ~= 0 then return false end
    if at${i} < now then
      x${i} = x${i} + (now - at${i}) * rate${i}
      at${i} = now
    end
    if x${i} > full${i} then x${i} = full${i} end
  end
  if c > limit${i} or x${i} < c * per${i} then return false end
  x${i} = x${i} - c * per${i}
  local rem${i}, reset${i} = x${i} / per${i}
  rem${i} = rem${i} - rem${i} % 1
  if x${i} >= full${i} then
    reset${i} = at${i} > now and at${i} or now
  else
    -- at + ceil((full - x) / rate), as at - floor((x - full) / rate)
    local u = (x${i} - full${i}) / rate${i}
    reset${i} = at${i} - (u - u % 1)
  end
  if not (x${i} < full${i} or at${i} > now) then return false end
`;
    case POOL:
      return `  -- ${i}: pool
  if h${i} ~= ${head} or l${i} ~= 32 then return false end
  local limit${i} = ${a}
  if d${i} < now then
    x${i}, at${i} = limit${i}, 0
  elseif ll${i} ~= 0 then
    return false
  else
    x${i}, at${i} = poolNow(x${i}, at${i}, limit${i}, ${b}, ${c})
  end
  if c > limit${i} or x${i} < c then return false end
  if x${i} >= limit${i} then at${i} = now end
  x${i} = x${i} - c
  if x${i} >= limit${i} then return false end
  -- at + ceil((limit - x) / tokens) * every
  local u = (x${i} - limit${i}) / ${b}
  local rem${i}, reset${i} = x${i}, at${i} - (u - u % 1) * ${c}
`;
    case FIXED_WINDOW:
      return `  -- ${i}: fixed window
  if h${i} ~= ${head} or l${i} ~= 40 then return false end
  local limit${i} = ${a}
  if d${i} >= now and ll${i} ~= 0 then return false end
  if not (d${i} >= now and cnt${i} > 0 and now < ems${i}) then
    sms${i}, ems${i} = windowOf(${i}, ${b}, ${c})
    cnt${i} = 0
  end
  if c > limit${i} or cnt${i} + c > limit${i} then return false end
  cnt${i} = cnt${i} + c
  local rem${i}, reset${i} = limit${i} - cnt${i}, ems${i}
  if rem${i} < 0 then rem${i} = 0 end
`;
    default:
      return `  -- ${i}: sliding window (m${i} slots from byte r${i}, then their total)
  if h${i} ~= ${head} or l${i} ~= 28 + 16 * m${i} or r${i} + 16 * m${i} + 7 > len then return false end
  local limit${i}, w${i}, pr${i} = ${a}, ${b}, ${c}
  local t${i}, last${i}, lc${i}, rr${i}, mm${i} = 0, 0, 0, r${i}, m${i}
  if d${i} < now then
    mm${i} = 0
  else
    if ll${i} ~= 0 or m${i} == 0 then return false end
    last${i}, lc${i}, t${i} = sunpack('<ddd', v, r${i} + 16 * (m${i} - 1))
    -- Expired slots leave from the front.
    local minSlot = (now - w${i}) / pr${i}
    minSlot = minSlot - minSlot % 1
    if m${i} == 1 then
      if last${i} < minSlot then t${i}, mm${i} = t${i} - lc${i}, 0 end
    else
      while mm${i} > 0 do
        local first, fc = sunpack('<dd', v, rr${i})
        if first >= minSlot then break end
        t${i}, rr${i}, mm${i} = t${i} - fc, rr${i} + 16, mm${i} - 1
      end
    end
  end
  if c > limit${i} or t${i} + c > limit${i} then return false end
  local slot${i}, count${i} = now / pr${i}, c
  slot${i} = slot${i} - slot${i} % 1
  if mm${i} > 0 then
    if last${i} == slot${i} then
      -- The latest pair leaves the kept range, its count raised.
      mm${i} = mm${i} - 1
      count${i} = lc${i} + c
    elseif last${i} > slot${i} then
      return false
    end
  end
  t${i} = t${i} + c
  local rem${i}, reset${i} = limit${i} - t${i}, (slot${i} + 1) * pr${i} + w${i}
  if rem${i} < 0 then rem${i} = 0 end
`;
  }
}

/** The values packed for policy i, after the write format's `c0` head. */
function writeValues(kind: number, i: number): string {
  switch (kind) {
    case FIXED_WINDOW:
      return `ems${i}, 40, cnt${i}, sms${i}, ems${i}, 0, 0`;
    case SLIDING_WINDOW:
      return `reset${i}, 44 + 16 * mm${i}, 0, 0, mm${i} + 1, mm${i} > 0 and v:sub(rr${i}, rr${i} + 16 * mm${i} - 1) or '', slot${i}, count${i}, t${i}`;
    default:
      return `reset${i}, 32, x${i}, at${i}, 0, 0`;
  }
}

/** Lua for decide.lua's fast-take section: `fastTake()` for layouts of `kinds`. */
export function fastTakeLua(kinds: readonly number[]): string {
  if (!hasFastTake(kinds)) throw new Error(`no common take for kinds ${kinds.join(",")}`);
  const n = kinds.length;
  // Segments: runs of policies read by one unpack; each ends after a sliding window's header.
  const segments: number[][] = [[]];
  kinds.forEach((k, idx) => {
    segments[segments.length - 1]!.push(idx + 1);
    if (k === SLIDING_WINDOW && idx < n - 1) segments.push([]);
  });
  const lines: string[] = [];
  lines.push(`-- Generated (fast-take.ts) for the kinds ${kinds.join(", ")}: decide.lua's fastTake with
-- its loop unrolled, one unpack per run of entries up to a sliding window's slots, one pack.
-- FQ[L]: layout L's parameters (q[3i-2..3i]), entry heads (q[${3 * n}+i]), and per run of
-- entries its unpack format and byte count (from q[${4 * n + 1}]); false: not of these kinds.
local FQ = {}
local function fastLayout()
  local q, at = {}, Lat[L] + 2
  if Ln[L] ~= ${n} then
    FQ[L] = false
    return false
  end`);
  kinds.forEach((k, idx) => {
    const i = idx + 1;
    lines.push(`  if ARGV[at] ~= '${k}' then
    FQ[L] = false
    return false
  end
  q[${3 * i - 2}], q[${3 * i - 1}], q[${3 * i}] = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  q[${3 * n + i}] = spack('<I4c0B', #ARGV[at + 4], ARGV[at + 4], ${k})
  at = at + 6`);
  });
  segments.forEach((seg, s) => {
    const fmt = seg.map((i) => `'c' .. #q[${3 * n + i}] .. '${readFormat(kinds[i - 1]!)}'`);
    const bytes = seg.map((i) => `#q[${3 * n + i}] + ${12 + fixedPayload(kinds[i - 1]!)}`);
    lines.push(`  q[${4 * n + 2 * s + 1}] = '<' .. ${fmt.join(" .. ")}`);
    lines.push(`  q[${4 * n + 2 * s + 2}] = ${bytes.join(" + ")}`);
  });
  lines.push(`  FQ[L] = q
  return q
end

local function fastTake()
  local q = FQ[L]
  if q == nil then q = fastLayout() end
  if not q then return false end
  local key = KEYS[kb + 1]
  local v = call('GET', key)
  if not v then return false end
  local len, c, due, latest = #v, cost, 0, 0`);
  let pos = "1";
  segments.forEach((seg, s) => {
    const lastIdx = seg[seg.length - 1]!;
    const lastIsSlides = kinds[lastIdx - 1] === SLIDING_WINDOW;
    const next = lastIsSlides ? `r${lastIdx}` : `p${s + 1}`;
    const vars = seg.flatMap((i) => readVars(kinds[i - 1]!, i));
    const need = `q[${4 * n + 2 * s + 2}]`;
    lines.push(`  if len < ${pos === "1" ? need : `${pos} - 1 + ${need}`} then return false end
  local ${vars.join(", ")}, ${next} = sunpack(q[${4 * n + 2 * s + 1}], v${pos === "1" ? "" : `, ${pos}`})`);
    for (const i of seg) {
      lines.push(checks(kinds[i - 1]!, i, n).trimEnd());
      lines.push(`  if reset${i} > due then due = reset${i} end
  if d${i} > latest then latest = d${i} end`);
    }
    pos = lastIsSlides ? `(r${lastIdx} + 16 * m${lastIdx} + 8)` : `p${s + 1}`;
  });
  lines.push(`  -- No entry of another limiter after these.
  if ${pos} ~= len + 1 then return false end`);
  const format = `<${kinds.map(writeFormat).join("")}`;
  const values = kinds.map((k, idx) => `q[${3 * n + idx + 1}], ${writeValues(k, idx + 1)}`);
  lines.push(`  store(key, true, spack('${format}',
    ${values.join(",\n    ")}), due, latest)`);
  const answer = kinds.map((_, idx) => `rem${idx + 1}, reset${idx + 1} - now`);
  lines.push(`  local o = oc
  out[o + 1] = 2
${answer.map((a, idx) => `  out[o + ${2 * idx + 2}], out[o + ${2 * idx + 3}] = ${a}`).join("\n")}
  oc = o + ${1 + 2 * n}
  return true
end
`);
  return `${lines.join("\n")}\n`;
}
