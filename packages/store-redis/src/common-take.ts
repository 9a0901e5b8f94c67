/**
 * The common take, written out for one sequence of policy kinds, from the kind modules.
 *
 * A layout whose kinds are known can take in one pass: one unpack of the entries up to (and
 * including) each sliding window's fixed part, each kind's take, one pack of the whole value.
 * Each kind module (src/lua/kinds/<kind>.lua) has a take function, `<kind>Take`, built from the
 * same functions its general path calls; this generator inlines it, and the functions it calls,
 * into the script's common-take section. The formulas themselves exist only in the modules.
 *
 * The generated `fastTake` answers as the general path would, or declines (returns false having
 * written nothing), and decide() then takes the general path.
 *
 * What the generator asks of the kind modules:
 * - `local <kind>Entry = '<fmt'`: the struct format of the payload's fixed part;
 *   `local <kind>TakeEntry = '<fmt'` what a take writes, when that differs.
 * - `local function <kind>Take(dueMs, payloadLength, <the fixed part's fields>, [value, slotsAt,]
 *   <the kind's parameters, named as in the kinds table>, cost[, policyIndex])` returning
 *   `remaining, resetAt, payloadLength, <the values of the take format>`; the entry it writes is
 *   due at `resetAt`. `value, slotsAt`: the value read and where the fixed part ends (a kind
 *   whose payload goes on past it ends a run of entries read by one unpack).
 * - An inlined function (one at column 0, `local function name(...)` to `end`) returns once, on
 *   its last line; any other `return` is `return false`, which declines the whole common take.
 *   Calls to inline are statements `[local] a, b = name(args)` on one line.
 */
import { type AnyKindSpec, KIND_LIST, KINDS, kindOfCode } from "@sluice/core/store";
import { kindSource } from "./script.js";

/** Most policies a generated common take handles; longer layouts use the general path. */
export const MAX_COMMON_TAKE_POLICIES = 6;

interface LuaFunction {
  readonly name: string;
  readonly params: readonly string[];
  /** Body lines before the final return. */
  readonly body: readonly string[];
  /** The final return's expressions. */
  readonly results: readonly string[];
  /**
   * For a function tagged `@nonzero-branches` of the form `local x = 0`, `if C1 then x = E1
   * elseif C2 then x = E2 ... end`, `return x`: C1, C2, ... (its result is 0 exactly when none
   * holds, so `if x ~= 0 then return false end` folds into `if C1 or C2 ... then`).
   */
  readonly branches?: readonly string[];
}

interface KindTake {
  readonly spec: AnyKindSpec;
  readonly take: LuaFunction;
  /** Read format of the payload's fixed part, without `<`. */
  readonly entry: string;
  /** Format of what a take writes, without `<`. */
  readonly written: string;
  /** Whether the payload goes on after its fixed part (the take gets value and slotsAt). */
  readonly tail: boolean;
  readonly functions: ReadonlyMap<string, LuaFunction>;
}

const kindTakes = new Map<number, KindTake | null>();

/** The kind of wire code `code`, when its module has a common take. */
function kindTake(code: number): KindTake | null {
  let found = kindTakes.get(code);
  if (found === undefined) {
    const spec = kindOfCode(code);
    found = spec === undefined ? null : readKindTake(spec);
    kindTakes.set(code, found);
  }
  return found;
}

function readKindTake(spec: AnyKindSpec): KindTake | null {
  const source = kindSource(spec.kind);
  const functions = luaFunctions(source);
  const take = functions.get(`${spec.kind}Take`);
  if (take === undefined) return null;
  const entry = formatConstant(source, `${spec.kind}Entry`);
  if (entry === undefined) throw new Error(`kinds/${spec.kind}.lua has no ${spec.kind}Entry`);
  const written = formatConstant(source, `${spec.kind}TakeEntry`) ?? entry;
  const fields = fieldCount(entry);
  const tail = take.params[2 + fields] === "value";
  const params = take.params.slice(2 + fields + (tail ? 2 : 0));
  const wanted = [...spec.params.map((p) => p.name), "cost"];
  if (
    take.params[0] !== "dueMs" ||
    take.params[1] !== "payloadLength" ||
    (tail && take.params[3 + fields] !== "slotsAt") ||
    wanted.some((name, k) => params[k] !== name) ||
    params.length > wanted.length + 1 ||
    (params.length > wanted.length && params.at(-1) !== "policyIndex")
  ) {
    throw new Error(
      `${take.name}(${take.params.join(", ")}) does not take dueMs, payloadLength, the entry's ` +
        `fields, then ${wanted.join(", ")} (the kinds table's parameters)`,
    );
  }
  if (take.results.length !== 3 + fieldCount(written)) {
    throw new Error(`${take.name} must return remaining, resetAt, payloadLength, then ${written}`);
  }
  return { spec, take, entry, written, tail, functions };
}

function formatConstant(source: string, name: string): string | undefined {
  return new RegExp(`^local ${name} = '<([^']*)'$`, "m").exec(source)?.[1];
}

/** Values a struct format packs or unpacks (each letter, with its size digits, is one). */
function fieldCount(format: string): number {
  return format.replace(/\d+/g, "").length;
}

/** Bytes of a format of fixed size (`d`, `I4`, `B`). */
function fixedBytes(format: string): number {
  let bytes = 0;
  for (const [, letter, size] of format.matchAll(/([a-zA-Z])(\d*)/g)) {
    if (letter === "d") bytes += 8;
    else if (letter === "I" || letter === "i") bytes += Number(size || 4);
    else if (letter === "B") bytes += 1;
    else throw new Error(`no fixed size for ${letter} in ${format}`);
  }
  return bytes;
}

/**
 * A Lua string literal of what follows an entry's head when the entry reads as default: due 0
 * (past), its fixed part's length, zeros. A take reads a past-due entry as default whatever its
 * payload, so a key that does not exist is taken as the heads of its layout with these.
 */
function emptyEntryLua(t: KindTake): string {
  const bytes = fixedBytes(t.entry);
  const length = [0, 1, 2, 3].map((k) => (bytes >> (8 * k)) & 255);
  return `'${[...Array(8).fill(0), ...length, ...Array(bytes).fill(0)].map((b) => `\\${b}`).join("")}'`;
}

/** The functions defined at column 0 of a Lua module that can be inlined. */
export function luaFunctions(source: string): Map<string, LuaFunction> {
  const functions = new Map<string, LuaFunction>();
  for (const [, tag, name, params, text] of source.matchAll(
    /^(-- @nonzero-branches\b.*\n)?local function (\w+)\(([^)]*)\)\n([\s\S]*?)\nend$/gm,
  )) {
    const lines = text!.split("\n");
    const last = lines.at(-1)!.trim();
    const returns = last.startsWith("return ");
    const body = returns ? lines.slice(0, -1) : lines;
    // Any other return declines the common take: `return false`.
    if (body.some((line) => /\breturn\b(?! false\b)/.test(line))) continue;
    functions.set(name!, {
      name: name!,
      params: params!
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
      body,
      results: returns ? splitTopLevel(last.slice("return ".length)) : [],
      ...(tag === undefined ? {} : { branches: nonzeroBranches(name!, body, last) }),
    });
  }
  return functions;
}

/** The branch conditions of a function tagged `@nonzero-branches` (see LuaFunction.branches). */
function nonzeroBranches(name: string, body: readonly string[], last: string): string[] {
  const x = /^ {2}local (\w+) = 0$/.exec(body[0] ?? "")?.[1];
  const conditions: string[] = [];
  const shape =
    x !== undefined &&
    last === `return ${x}` &&
    body.at(-1) === "  end" &&
    body.slice(1, -1).every((line, k) => {
      if (k % 2 === 1) return new RegExp(`^ {4}${x} = .+$`).test(line);
      const branch = (k === 0 ? /^ {2}if (.+) then$/ : /^ {2}elseif (.+) then$/).exec(line);
      if (branch !== null) conditions.push(branch[1]!);
      return branch !== null;
    }) &&
    body.length % 2 === 0;
  if (!shape || conditions.length === 0) {
    throw new Error(
      `${name} is tagged @nonzero-branches but is not local x = 0, if/elseif x = ..., return x`,
    );
  }
  return conditions;
}

/** Splits a Lua expression list at its top-level commas. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = "";
  let start = 0;
  for (let k = 0; k < list.length; k++) {
    const ch = list[k]!;
    if (quote !== "") {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "(" || ch === "{" || ch === "[") depth++;
    else if (ch === ")" || ch === "}" || ch === "]") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(list.slice(start, k).trim());
      start = k + 1;
    }
  }
  const rest = list.slice(start).trim();
  if (rest !== "") parts.push(rest);
  return parts;
}

const CALL =
  /^(\s*)(local\s+)?([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=\s*([A-Za-z_]\w*)\((.*)\)\s*$/;

/**
 * `lines` with every call statement of a function in `functions` replaced by its body, in a
 * do-block that binds the parameters to the arguments and the results to the targets.
 *
 * Lua in Redis pays for every instruction, so the body keeps no name the caller does not need:
 * a local it returns becomes the target it goes to; a result only tested by the next statement
 * (`if t then return false end`, or `if t ~= 0 ...` of a function tagged `@nonzero-branches`)
 * is folded into that test; and with `aliases`, a target whose result is a number or a name the
 * caller sees is not assigned at all: `aliases` maps it to that result, for the caller to use.
 */
function inline(
  lines: readonly string[],
  functions: ReadonlyMap<string, LuaFunction>,
  depth = 0,
  consumed: ReadonlySet<string> = new Set(),
  aliases?: Map<string, string>,
): string[] {
  if (depth > 8) throw new Error("inlining does not end");
  const out: string[] = [];
  const skipped = new Set<number>();
  for (let idx = 0; idx < lines.length; idx++) {
    if (skipped.has(idx)) continue;
    const line = lines[idx]!;
    const m = CALL.exec(line);
    const f = m === null ? undefined : functions.get(m[4]!);
    if (m === null || f === undefined) {
      out.push(line);
      continue;
    }
    const [, indent, local, targetList, , argList] = m as unknown as string[];
    const targets = targetList!.split(",").map((t) => t.trim());
    const args = splitTopLevel(argList!);
    if (args.length !== f.params.length) {
      throw new Error(`${f.name} takes ${f.params.length} arguments: ${line.trim()}`);
    }
    if (local !== undefined) {
      const shadowed = targets.find((t) => args.some((a) => new RegExp(`\\b${t}\\b`).test(a)));
      if (shadowed !== undefined) {
        throw new Error(`cannot inline ${line.trim()}: ${shadowed} is declared and read at once`);
      }
    }
    // A target only tested for a refusal by the next statement, declared here or on the line
    // before, and read nowhere else: the test takes its result's place.
    let guard:
      | { at: number; target: string; nonzero: boolean; indent: string; declaredBefore: boolean }
      | undefined;
    let nextAt = idx + 1;
    while (nextAt < lines.length && /^\s*(--.*)?$/.test(lines[nextAt]!)) nextAt++;
    const test = /^(\s*)if (\w+)( ~= 0)? then return false end$/.exec(lines[nextAt] ?? "");
    if (test !== null && targets.includes(test[2]!)) {
      const t = test[2]!;
      const declaredBefore = local === undefined && out.at(-1) === `${indent}local ${t}`;
      const word = new RegExp(`(?<![\\w.:])${t}(?!\\w)`);
      const readElsewhere = lines.some(
        (l, k) => k !== idx && k !== nextAt && !(declaredBefore && k === idx - 1) && word.test(l),
      );
      const nonzero = test[3] !== undefined;
      if (
        (local !== undefined || declaredBefore) &&
        !readElsewhere &&
        (!nonzero || (f.branches !== undefined && targets.length === 1))
      ) {
        guard = { at: nextAt, target: t, nonzero, indent: test[1]!, declaredBefore };
      }
    }
    if (guard?.nonzero) {
      // The branch conditions, on the arguments (names or numbers: each may be read twice).
      if (args.every((a) => /^([A-Za-z_]\w*|-?\d+)$/.test(a))) {
        const byParam = new Map(f.params.map((p, k) => [p, args[k]!]));
        const on = (text: string) =>
          text.replace(/(?<![\w.:])[A-Za-z_]\w*(?!\w)/g, (name) => byParam.get(name) ?? name);
        if (guard.declaredBefore) out.pop();
        out.push(
          `${guard.indent}if ${f.branches!.map((c) => `(${on(c)})`).join(" or ")} then return false end`,
        );
        skipped.add(guard.at);
        continue;
      }
      guard = undefined;
    }
    // A local the body returns is the target it goes to, unless that name means something else
    // in the body (or its arguments).
    const declaredOnce = (name: string) =>
      f.body.filter((l) => declaredNames([l]).has(name)).length === 1 &&
      f.body.some((l) => /^ {2}local /.test(l) && declaredNames([l]).has(name));
    const toTarget = new Map<string, string>();
    f.results.forEach((r, k) => {
      const t = targets[k];
      if (t === undefined || t === guard?.target || !/^[A-Za-z_]\w*$/.test(r)) return;
      if (f.params.includes(r) || f.results.indexOf(r) !== k || !declaredOnce(r)) return;
      const word = new RegExp(`(?<![\\w.:])${t}(?!\\w)`);
      if (
        t !== r &&
        (f.body.some((l) => word.test(l)) || f.params.includes(t) || args.some((a) => word.test(a)))
      )
        return;
      toTarget.set(r, t);
    });
    const retarget = (text: string) =>
      toTarget.size === 0
        ? text
        : text.replace(
            new RegExp(`(?<![\\w.:])(${[...toTarget.keys()].join("|")})(?!\\w)`, "g"),
            (name) => toTarget.get(name)!,
          );
    // A local holding a comparison of names the body never assigns: the comparison itself, where
    // the local is read (a test costs the same, and no boolean is made).
    let source = f.body;
    for (const line of f.body) {
      const pure = /^ {2}local (\w+) = ([\w\s]+ (?:[<>]=?|==|~=) [\w\s]+)$/.exec(line);
      if (pure === null || f.results.some((r) => new RegExp(`\\b${pure[1]}\\b`).test(r))) continue;
      const names = pure[2]!.match(/[A-Za-z_]\w*/g) ?? [];
      if ([pure[1]!, ...names].some((n) => assigns(f.body, n))) continue;
      const read = new RegExp(`(?<![\\w.:])${pure[1]}(?!\\w)`, "g");
      source = source.filter((l) => l !== line).map((l) => l.replace(read, `(${pure[2]})`));
    }
    const body: string[] = [];
    for (const bodyLine of source) {
      const decl = /^ {2}local ([\w, ]+?)( = .*)?$/.exec(bodyLine);
      if (decl === null || toTarget.size === 0) {
        body.push(retarget(bodyLine));
        continue;
      }
      const names = decl[1]!.split(",").map((n) => n.trim());
      const kept = names.filter((n) => !toTarget.has(n));
      if (kept.length === names.length) {
        body.push(retarget(bodyLine));
        continue;
      }
      // The names it declares that are targets now: assigned, not declared.
      const values = decl[2] === undefined ? [] : splitTopLevel(decl[2].slice(3));
      if (
        kept.length > 0 &&
        values.length === names.length &&
        values.every((v) => !v.includes("("))
      ) {
        // Value by value: the kept locals declared with theirs, the targets assigned theirs.
        const value = (n: string) => retarget(values[names.indexOf(n)]!);
        body.push(`  local ${kept.join(", ")} = ${kept.map(value).join(", ")}`);
        const moved = names.filter((n) => toTarget.has(n));
        body.push(
          `  ${moved.map((n) => toTarget.get(n)!).join(", ")} = ${moved.map(value).join(", ")}`,
        );
        continue;
      }
      if (kept.length > 0) body.push(`  local ${kept.join(", ")}`);
      const assigned = names.map((n) => toTarget.get(n) ?? n);
      body.push(
        `  ${assigned.join(", ")} = ${decl[2] === undefined ? names.map(() => "nil").join(", ") : retarget(decl[2].slice(3))}`,
      );
    }
    const fResults = f.results.map(retarget);
    // A parameter passed a variable needs no local of its own when the body can use that
    // variable under the parameter's name: when the body leaves it alone, when the variable is
    // where the parameter's final value goes, or when the caller has no further use for it
    // (`consumed`). The body's own names must not capture it.
    const bodyNames = declaredNames(body);
    const renames = new Map<string, string>();
    const bound: string[] = [];
    const values: string[] = [];
    const word = (name: string) => new RegExp(`(?<![\\w.:])${name}(?!\\w)`, "g");
    const uses = (name: string) =>
      [...body, ...fResults].reduce((n, l) => n + (l.match(word(name))?.length ?? 0), 0);
    f.params.forEach((param, k) => {
      const arg = args[k]!;
      // A number, a comparison (a test costs the same as testing a boolean local), or a read of
      // a table element used at most once, written where the parameter is read.
      const table = /^([A-Za-z_]\w*)\[\d+\]$/.exec(arg);
      if (
        !assigns(body, param) &&
        (/^-?\d+$/.test(arg) ||
          /^\([\w\s]+ (?:[<>]=?|==|~=) [\w\s]+\)$/.test(arg) ||
          (table !== null && !bodyNames.has(table[1]!) && uses(param) <= 1))
      ) {
        renames.set(param, arg);
        return;
      }
      const usable =
        /^[A-Za-z_]\w*$/.test(arg) &&
        args.indexOf(arg) === args.lastIndexOf(arg) &&
        !bodyNames.has(arg) &&
        (arg === param || !f.params.includes(arg));
      if (usable) {
        const at = fResults.indexOf(param);
        if (!assigns(body, param) || (at >= 0 && targets[at] === arg) || consumed.has(arg)) {
          if (arg !== param) renames.set(param, arg);
          return;
        }
      }
      bound.push(param);
      values.push(arg);
    });
    const rename = (text: string) =>
      renames.size === 0
        ? text
        : text.replace(
            new RegExp(`(?<![\\w.:])(${[...renames.keys()].join("|")})(?!\\w)`, "g"),
            (name) => renames.get(name)!,
          );
    const renamedBody = body.map(rename);
    const results = fResults.map(rename);
    const declared = declaredNames(renamedBody);
    const shadowing = new Set([...declared, ...bound]);
    // Whether a result is still what it says after the block (no name of the block's own).
    const visible = (r: string) =>
      [...r.replace(/'[^']*'|"[^"]*"/g, "").matchAll(/(?<![\w.:])[A-Za-z_]\w*/g)].every(
        ([name]) => !shadowing.has(name),
      );
    let guardLine: string | undefined;
    if (guard !== undefined) {
      const r = results[targets.indexOf(guard.target)];
      if (r !== undefined && visible(r)) {
        guardLine = `${guard.indent}if ${r} then return false end`;
        skipped.add(guard.at);
        if (guard.declaredBefore) out.pop();
      }
    }
    const folded = guardLine === undefined ? undefined : guard!.target;
    if (aliases !== undefined) {
      targets.forEach((t, k) => {
        const r = results[k];
        if (r === undefined || r === t || t === folded) return;
        if (/^-?\d+$/.test(r) || (/^[A-Za-z_]\w*$/.test(r) && !shadowing.has(r))) aliases.set(t, r);
      });
    }
    const assigned = targets.filter((t) => t !== folded && !aliases?.has(t));
    if (local !== undefined && assigned.length > 0)
      out.push(`${indent}local ${assigned.join(", ")}`);
    // The results, minus those already in place.
    const pairs = targets
      .map((t, k) => [t, results[k]] as const)
      .filter(
        ([t, r]) =>
          r !== undefined && t !== folded && !aliases?.has(t) && !(r === t && !shadowing.has(t)),
      );
    const direct = !targets.some((t) => t !== folded && shadowing.has(t));
    const inner = direct ? `${indent}  ` : `${indent}    `;
    out.push(`${indent}do`);
    let temps: string[] = [];
    if (!direct) {
      // The body's own names shadow a target: results pass through temporaries.
      temps = pairs.map((_, k) => `__${depth}_${k + 1}`);
      out.push(`${indent}  local ${temps.join(", ")}`);
      out.push(`${indent}  do`);
    }
    if (bound.length > 0) out.push(`${inner}local ${bound.join(", ")} = ${values.join(", ")}`);
    for (const bodyLine of inline(renamedBody, functions, depth + 1)) {
      out.push(bodyLine === "" ? "" : `${inner.slice(2)}${bodyLine}`);
    }
    if (pairs.length > 0) {
      const into = direct ? pairs.map(([t]) => t) : temps;
      out.push(`${inner}${into.join(", ")} = ${pairs.map(([, r]) => r).join(", ")}`);
    }
    if (!direct) {
      out.push(`${indent}  end`);
      if (pairs.length > 0)
        out.push(`${indent}  ${pairs.map(([t]) => t).join(", ")} = ${temps.join(", ")}`);
    }
    out.push(`${indent}end`);
    if (guardLine !== undefined) out.push(guardLine);
  }
  return out;
}

/** Names a function body declares (`local`, `for`), at any depth. */
function declaredNames(body: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const line of body) {
    for (const [, list] of line.matchAll(
      /\b(?:local|for)\s+(?:function\s+)?([\w\s,]+?)\s*(?:=|\bin\b|\(|$)/g,
    )) {
      for (const name of list!.split(",")) names.add(name.trim());
    }
  }
  return names;
}

/** Whether `name` may be assigned in `body` (an overestimate: it costs a local, never a bug). */
function assigns(body: readonly string[], name: string): boolean {
  const assignment = new RegExp(
    `(?:^|\\bthen\\b|\\belse\\b|\\bdo\\b|;)\\s*(?:\\w+\\s*,\\s*)*${name}\\s*(?:,\\s*\\w+\\s*)*=(?!=)`,
  );
  return body.some((line) => assignment.test(line));
}

/**
 * The inlined take of kind `t` for policy i: from the unpacked `dueMs<sfx>`,
 * `payloadLength<sfx>` and fields (`<field><sfx>`; a suffix only where entries read together
 * would share names, since a parameter bound to a variable of its own name costs nothing) into
 * `remaining<i>`, `resetAt<i>`, `length<i>`, `entry<i>_<k>`; those whose value is a number or
 * a variable of the caller's are not assigned but put in `aliases`, to be written in their place.
 */
function takeCall(
  t: KindTake,
  i: number,
  value: string,
  params: readonly string[],
  policyIndex: string,
  sfx: string,
  aliases: Map<string, string>,
): string[] {
  const fields = fieldCount(t.entry);
  const args = [
    `dueMs${sfx}`,
    `payloadLength${sfx}`,
    ...t.take.params.slice(2, 2 + fields).map((f) => `${f}${sfx}`),
    ...(t.tail ? [value, `slotsAt${sfx}`] : []),
    ...params.slice(0, t.spec.params.length),
    "cost",
  ];
  if (t.take.params.at(-1) === "policyIndex") args.push(policyIndex);
  const written = Array.from({ length: fieldCount(t.written) }, (_, k) => `entry${i}_${k + 1}`);
  // The entry's fields as read are the take's to change: nothing reads them after it (its due,
  // payload length and slotsAt are read after it, to find the next entry).
  const read = new Set(args.slice(2, 2 + fields));
  return inline(
    [
      `  local remaining${i}, resetAt${i}, length${i}, ${written.join(", ")} = ${t.take.name}(${args.join(", ")})`,
    ],
    t.functions,
    0,
    read,
    aliases,
  );
}

/**
 * Lua for the common-take section of the script every layout can use: each kind's take inlined
 * into a function of its own (KIND_TAKE[code]), and `fastTake` calling them in policy order,
 * entry by entry, for a layout of any length whose kinds all have a take.
 */
export function commonTakeLoopLua(): string {
  const lines: string[] = [];
  const kinds = KIND_LIST.filter((spec) => kindTake(spec.code) !== null);
  lines.push(`-- Generated by common-take.ts: each kind's take inlined from its module into KIND_TAKE[code],
-- which reads one entry after its head and answers remaining, resetAt, its due as read, where
-- the next entry starts and the entry to write after the head (in up to three parts); false:
-- the general path decides.
-- KIND_EMPTY[code]: what follows the head of an entry that reads as default (past due), for a
-- key that does not exist.
local KIND_TAKE, KIND_EMPTY, FL, FBUF = {}, {}, {}, {}`);
  for (const spec of kinds) {
    const t = kindTake(spec.code)!;
    const fields = t.take.params.slice(2, 2 + fieldCount(t.entry));
    const params = spec.params.map((p) => p.name);
    const written = Array.from({ length: fieldCount(t.written) }, (_, k) => `entry1_${k + 1}`);
    const next = t.tail ? "slotsAt" : "nextAt";
    lines.push(`
-- ${spec.kind}
KIND_EMPTY[${spec.code}] = ${emptyEntryLua(t)}
KIND_TAKE[${spec.code}] = function(value, at, ${[...params, "cost", "policyIndex"].join(", ")})
  if at + ${11 + fixedBytes(t.entry)} > #value then return false end
  -- The clock's reading as a local (an upvalue costs an instruction per read).
  local now = now
  local dueMs, payloadLength, ${fields.join(", ")}, ${next} = sunpack('<dI4${t.entry}', value, at)`);
    const aliases = new Map<string, string>();
    lines.push(...takeCall(t, 1, "value", params, "policyIndex", "", aliases));
    const as = (name: string) => aliases.get(name) ?? name;
    const end = t.tail ? `slotsAt - ${fixedBytes(t.entry)} + payloadLength` : "nextAt";
    // A string field (c0) is passed on as it is: packing it into the entry would copy it (Redis'
    // Lua hashes every byte of every new string).
    const [before, after] = t.written.split("c0");
    const parts =
      after === undefined
        ? `spack('<dI4${t.written}', ${as("resetAt1")}, ${as("length1")}, ${written.map(as).join(", ")})`
        : [
            `spack('<dI4${before}', ${as("resetAt1")}, ${as("length1")}, ${written.slice(0, fieldCount(before!)).map(as).join(", ")})`,
            as(written[fieldCount(before!)]!),
            `spack('<${after}', ${written
              .slice(fieldCount(before!) + 1)
              .map(as)
              .join(", ")})`,
          ].join(", ");
    lines.push(`  return ${as("remaining1")}, ${as("resetAt1")}, dueMs, ${end}, ${parts}
end`);
  }
  lines.push(`
-- FL[L]: layout L's takes, parameters, entry heads and the value its key holds when every entry
-- reads as default; false: a kind without a take.
local function fastLayout()
  local take, first, second, third, head, empty = {}, {}, {}, {}, {}, {}
  local q = Lat[L] + 2
  for i = 1, Ln[L] do
    local code, name = tonumber(ARGV[q]), ARGV[q + 4]
    take[i] = KIND_TAKE[code]
    if not take[i] then
      FL[L] = false
      return false
    end
    first[i], second[i], third[i] = tonumber(ARGV[q + 1]), tonumber(ARGV[q + 2]), tonumber(ARGV[q + 3])
    head[i] = spack('<I4c0B', #name, name, code)
    empty[i] = head[i] .. KIND_EMPTY[code]
    q = q + 6
  end
  local f = { take, first, second, third, head, concat(empty) }
  FL[L] = f
  return f
end

fastTake = function()
  local f = FL[L]
  if f == nil then f = fastLayout() end
  if not f then return false end
  local take, first, second, third, head = f[1], f[2], f[3], f[4], f[5]
  local key = KEYS[kb + 1]
  -- No key: every entry reads as default, as when past due.
  local v = call('GET', key) or f[6]
  local pos, due, latest, r, fb = 1, 0, 0, oc + 2, 0
  for i = 1, Ln[L] do
    local h = head[i]
    if find(v, h, pos, true) ~= pos then return false end
    local remaining, resetAt, dueMs, nextAt, part1, part2, part3 = take[i](v, pos + #h, first[i], second[i], third[i], cost, i)
    if not remaining then return false end
    FBUF[fb + 1], FBUF[fb + 2] = h, part1
    fb = fb + 2
    if part2 then
      FBUF[fb + 1], FBUF[fb + 2] = part2, part3
      fb = fb + 2
    end
    if resetAt > due then due = resetAt end
    if dueMs > latest then latest = dueMs end
    out[r], out[r + 1] = remaining, resetAt - now
    r = r + 2
    pos = nextAt
  end
  -- No entry of another limiter after these.
  if pos ~= #v + 1 then return false end
  out[oc + 1] = 2
  oc = r - 1
  store(key, true, concat(FBUF, '', 1, fb), due, latest)
  return true
end
`);
  return lines.join("\n");
}

/** Whether `kinds` (wire codes) can have a common take of its own. */
export function hasCommonTake(kinds: readonly number[]): boolean {
  return (
    kinds.length >= 1 &&
    kinds.length <= MAX_COMMON_TAKE_POLICIES &&
    kinds.every((code) => kindTake(code) !== null)
  );
}

/** Lua for decide.lua's common-take section: `fastTake` for layouts of `kinds` (wire codes). */
export function commonTakeLua(kinds: readonly number[]): string {
  if (!hasCommonTake(kinds)) throw new Error(`no common take for kinds ${kinds.join(",")}`);
  const takes = kinds.map((code) => kindTake(code)!);
  const n = kinds.length;
  // Runs of entries read by one unpack: each ends after a kind whose payload goes on.
  const runs: number[][] = [[]];
  takes.forEach((t, idx) => {
    runs.at(-1)!.push(idx + 1);
    if (t.tail && idx < n - 1) runs.push([]);
  });
  const head = (i: number) => `q[${3 * n + i}]`;
  const names = takes.map((t) => t.spec.kind).join(", ");
  const lines: string[] = [];
  lines.push(`-- Generated by common-take.ts for the kinds ${names} (${kinds.join(", ")}): each kind's
-- take inlined from its module, one unpack per run of entries, one pack.
-- FQ[L]: layout L's parameters (q[3i-2..3i]), entry heads (q[${3 * n}+i]), per run of entries
-- its unpack format and byte count (from q[${4 * n + 1}]), then the value its key holds when every
-- entry reads as default; false: not of these kinds.
local FQ = {}
local function fastLayout()
  local q, at = {}, Lat[L] + 2
  if Ln[L] ~= ${n} then
    FQ[L] = false
    return false
  end`);
  kinds.forEach((code, idx) => {
    const i = idx + 1;
    lines.push(`  if ARGV[at] ~= '${code}' then
    FQ[L] = false
    return false
  end
  q[${3 * i - 2}], q[${3 * i - 1}], q[${3 * i}] = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  ${head(i)} = spack('<I4c0B', #ARGV[at + 4], ARGV[at + 4], ${code})
  at = at + 6`);
  });
  runs.forEach((run, s) => {
    const format = run.map((i) => `'c' .. #${head(i)} .. 'dI4${takes[i - 1]!.entry}'`);
    const bytes = run.map((i) => `#${head(i)} + ${12 + fixedBytes(takes[i - 1]!.entry)}`);
    lines.push(`  q[${4 * n + 2 * s + 1}] = '<' .. ${format.join(" .. ")}`);
    lines.push(`  q[${4 * n + 2 * s + 2}] = ${bytes.join(" + ")}`);
  });
  const emptyAt = 4 * n + 2 * runs.length + 1;
  lines.push(`  FQ[L] = q
  return q
end

fastTake = function()
  local q = FQ[L]
  if q == nil then q = fastLayout() end
  if not q then return false end
  local key = KEYS[kb + 1]
  local v = call('GET', key)
  if not v then
    -- No key: every entry reads as default, as when past due (made once per layout and call).
    v = q[${emptyAt}]
    if not v then
      v = ${kinds.map((_, idx) => `${head(idx + 1)} .. ${emptyEntryLua(takes[idx]!)}`).join(" .. ")}
      q[${emptyAt}] = v
    end
  end
  -- The clock's reading and the cost as locals: the takes read them often, and reading an
  -- upvalue costs Lua an instruction each time.
  local now = now
  local cost, len, due, latest = cost, #v, 0, 0`);
  const aliases = new Map<string, string>();
  const as = (name: string) => aliases.get(name) ?? name;
  let pos = "1";
  const body: string[] = [];
  runs.forEach((run, s) => {
    const need = `q[${4 * n + 2 * s + 2}]`;
    const vars: string[] = [];
    for (const i of run) {
      const t = takes[i - 1]!;
      const fields = t.take.params.slice(2, 2 + fieldCount(t.entry));
      const sfx = n === 1 ? "" : String(i);
      vars.push(
        `head${i}`,
        `dueMs${sfx}`,
        `payloadLength${sfx}`,
        ...fields.map((f) => `${f}${sfx}`),
      );
    }
    const last = run.at(-1)!;
    const lastSfx = n === 1 ? "" : String(last);
    const next = takes[last - 1]!.tail ? `slotsAt${lastSfx}` : `at${s + 1}`;
    body.push(`  if len < ${pos === "1" ? need : `${pos} - 1 + ${need}`} then return false end`);
    body.push(
      `  local ${vars.join(", ")}, ${next} = sunpack(q[${4 * n + 2 * s + 1}], v${pos === "1" ? "" : `, ${pos}`})`,
    );
    for (const i of run) {
      const t = takes[i - 1]!;
      body.push(`  -- ${i}: ${t.spec.kind}`);
      body.push(`  if head${i} ~= ${head(i)} then return false end`);
      body.push(
        ...takeCall(
          t,
          i,
          "v",
          [`q[${3 * i - 2}]`, `q[${3 * i - 1}]`, `q[${3 * i}]`],
          String(i),
          n === 1 ? "" : String(i),
          aliases,
        ),
      );
      const dueMs = `dueMs${n === 1 ? "" : i}`;
      // (Dues are never negative: the first policy's are the first maximum.)
      body.push(
        i === 1
          ? `  due, latest = ${as("resetAt1")}, ${dueMs}`
          : `  if ${as(`resetAt${i}`)} > due then due = ${as(`resetAt${i}`)} end
  if ${dueMs} > latest then latest = ${dueMs} end`,
      );
    }
    const t = takes[last - 1]!;
    pos = t.tail
      ? `(slotsAt${lastSfx} - ${fixedBytes(t.entry)} + payloadLength${lastSfx})`
      : `at${s + 1}`;
  });
  // The value's length is a local already.
  lines.push(...body.map((line) => line.replace(/#v\b/g, "len")));
  lines.push(`  -- No entry of another limiter after these.
  if ${pos} ~= len + 1 then return false end`);
  const format = `<${takes.map((t) => `c0dI4${t.written}`).join("")}`;
  const values = takes.map((t, idx) => {
    const i = idx + 1;
    const written = Array.from({ length: fieldCount(t.written) }, (_, k) => `entry${i}_${k + 1}`);
    return `${head(i)}, ${as(`resetAt${i}`)}, ${as(`length${i}`)}, ${written.map(as).join(", ")}`;
  });
  lines.push(`  store(key, true, spack('${format}',
    ${values.join(",\n    ")}), due, latest)
  local o, out = oc, out
  out[o + 1] = 2
${kinds.map((_, idx) => `  out[o + ${2 * idx + 2}], out[o + ${2 * idx + 3}] = ${as(`remaining${idx + 1}`)}, ${as(`resetAt${idx + 1}`)} - now`).join("\n")}
  oc = o + ${1 + 2 * n}
  return true
end
`);
  return `${lines.join("\n")}\n`;
}

/** The kinds (wire codes) of a list of kind names, for tests and tools. */
export function kindCodes(kinds: readonly (keyof typeof KINDS)[]): number[] {
  return kinds.map((k) => KINDS[k].code);
}
