import { KIND_LIST, type KindSpec } from "@sluice/core/store";
import { kindFileName, POLICY_STRIDE, paramVariable } from "./layout.js";

/**
 * Builds the decision function's text from decide.sql (what every kind shares) and one fragment
 * per kind (sql/kinds/<kind>.sql), reading kind codes and parameter order from core's kinds
 * table. Run at build time by scripts/generate-sql.ts; a test runs it again and compares.
 *
 * A fragment is a list of sections, each opened by a `-- @section <name>` line; text before the
 * first is the file's own documentation. Inside a section, a `-- @use <name>` line stands for
 * another section of the same fragment. `decode` (`level := s.a;`) and `encode` (`s.a := level;`)
 * name the row column that holds each state variable: the assembler writes the column in the
 * variable's place, so the state is read and changed in the row itself (no copying in and out,
 * which cost a statement per field per pass).
 */
export interface SqlSources {
  /** decide.sql */
  readonly decide: string;
  /** Each kind's fragment by file name without `.sql` (`token-bucket`). */
  readonly kinds: Readonly<Record<string, string>>;
}

/** Placeholders left in the result, filled per table by `executeFunctionSql`. */
export const TABLE_PLACEHOLDERS = ["{{table}}", "{{execute}}", "{{now}}"] as const;

type Sections = ReadonlyMap<string, readonly string[]>;

/** A kind's sections and the row column of each of its state variables. */
interface Fragment {
  readonly file: string;
  readonly sections: Sections;
  readonly columns: ReadonlyMap<string, string>;
}

const SECTION = /^-- @section ([a-z_]+)\s*$/;
const USE = /^(\s*)-- @use ([a-z_]+)\s*$/;
const SLOT = /^(\s*)\{\{([a-z_]+)\}\}\s*$/;

function parseFragment(file: string, text: string): Sections {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    const m = SECTION.exec(line);
    if (m) {
      if (sections.has(m[1]!)) throw new Error(`${file}: section ${m[1]} twice`);
      current = [];
      sections.set(m[1]!, current);
    } else if (current !== undefined) current.push(line);
  }
  for (const lines of sections.values()) {
    while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  }
  return sections;
}

const isCode = (line: string) => line.trim() !== "" && !line.trim().startsWith("--");

/** Variable -> column from `decode`; `encode` must write exactly those back. */
function stateColumnsOf(file: string, sections: Sections): Map<string, string> {
  const columns = new Map<string, string>();
  for (const line of (sections.get("decode") ?? []).filter(isCode)) {
    const m = /^(\w+) := s\.(\w+);$/.exec(line.trim());
    if (m === null) throw new Error(`${file}: decode lines read one column each: "${line.trim()}"`);
    columns.set(m[1]!, m[2]!);
  }
  const written = new Map<string, string>();
  for (const line of (sections.get("encode") ?? []).filter(isCode)) {
    const m = /^s\.(\w+) := (\w+);$/.exec(line.trim());
    if (m === null)
      throw new Error(`${file}: encode lines write one column each: "${line.trim()}"`);
    written.set(m[2]!, m[1]!);
  }
  if (JSON.stringify([...written].sort()) !== JSON.stringify([...columns].sort())) {
    throw new Error(`${file}: encode must write back exactly the columns decode reads`);
  }
  return columns;
}

/** `line` with each state variable replaced by its column (comments left as written). */
function withColumns(line: string, columns: ReadonlyMap<string, string>): string {
  const at = line.indexOf("--");
  let code = at < 0 ? line : line.slice(0, at);
  for (const [variable, column] of columns) {
    code = code.replace(new RegExp(`(?<![\\w.])${variable}\\b`, "g"), `s.${column}`);
  }
  return at < 0 ? code : code + line.slice(at);
}

/** A section's lines with its `-- @use` lines expanded, indented by `indent`. */
function sectionLines(
  sections: Sections,
  name: string,
  indent: string,
  file: string,
  seen: readonly string[] = [],
): string[] | undefined {
  const lines = sections.get(name);
  if (lines === undefined) return undefined;
  if (seen.includes(name)) throw new Error(`${file}: section ${name} uses itself`);
  const out: string[] = [];
  for (const line of lines) {
    const use = USE.exec(line);
    if (use) {
      const used = sectionLines(sections, use[2]!, indent + use[1]!, file, [...seen, name]);
      if (used === undefined) throw new Error(`${file}: no section ${use[2]} to use`);
      out.push(...used);
    } else out.push(line === "" ? "" : indent + line);
  }
  return out;
}

/** `-- @each-kind` ... `-- @end` blocks, repeated per kind, with the slots filled. */
function expandKinds(template: string, fragments: ReadonlyMap<KindSpec, Fragment>): string {
  const lines = template.split("\n");
  const out: (string | null)[] = [];
  // A kind's parameters are read wherever one of its arms uses one: known once all are built.
  const armText = new Map<KindSpec, string>();
  const paramSlots: { kind: KindSpec; at: number; indent: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "-- @each-kind") {
      out.push(lines[i]!);
      continue;
    }
    const end = lines.indexOf("-- @end", i);
    if (end < 0) throw new Error("decide.sql: -- @each-kind without -- @end");
    for (const [kind, { file, sections, columns }] of fragments) {
      const arm: string[] = [];
      for (const line of lines.slice(i + 1, end)) {
        const slot = SLOT.exec(line);
        if (slot === null) arm.push(line.replaceAll("{{code}}", String(kind.code)));
        else if (slot[2] === "params") {
          paramSlots.push({ kind, at: out.length + arm.length, indent: slot[1]! });
          arm.push("");
        } else {
          const section = sectionLines(sections, slot[2]!, slot[1]!, file);
          if (section === undefined) arm.push(`${slot[1]}NULL;`);
          else for (const l of section) arm.push(withColumns(l, columns));
        }
      }
      armText.set(kind, `${armText.get(kind) ?? ""}\n${arm.join("\n")}`);
      out.push(...arm);
    }
    i = end;
  }
  for (const { kind, at, indent } of paramSlots) {
    const text = armText.get(kind)!;
    const reads = kind.params
      .map((p, k) => ({ name: paramVariable(p.name), k }))
      .filter(({ name }) => new RegExp(`\\b${name}\\b`).test(text))
      .map(({ name, k }) => `${indent}${name} := in_policies[pb + ${k + 2}];`);
    out[at] = reads.length === 0 ? null : reads.join("\n");
  }
  return out.filter((line) => line !== null).join("\n");
}

/** Every parameter (bigint) and each fragment's `declare` lines, once each. */
function declarations(fragments: ReadonlyMap<KindSpec, Fragment>): string {
  const byName = new Map<string, string>();
  const add = (line: string, file: string) => {
    const m = /^([a-z_][a-z0-9_]*)\s+(.+);$/.exec(line.trim());
    if (m === null) throw new Error(`${file}: cannot read declaration "${line.trim()}"`);
    const known = byName.get(m[1]!);
    if (known !== undefined && known !== m[2]) {
      throw new Error(`${file}: ${m[1]} declared as ${m[2]} here, as ${known} elsewhere`);
    }
    byName.set(m[1]!, m[2]!);
  };
  for (const kind of KIND_LIST)
    for (const p of kind.params) add(`${paramVariable(p.name)} bigint;`, "kinds table");
  for (const { file, sections } of fragments.values()) {
    for (const line of sections.get("declare") ?? []) if (isCode(line)) add(line, file);
  }
  return [...byName].map(([name, type]) => `  ${name} ${type};`).join("\n");
}

/** The function's text, with `{{table}}`, `{{execute}}` and `{{now}}` left to fill per table. */
export function assembleDecideFunction(sources: SqlSources): string {
  const fragments = new Map<KindSpec, Fragment>();
  for (const kind of KIND_LIST) {
    const name = kindFileName(kind.kind);
    const text = sources.kinds[name];
    if (text === undefined) throw new Error(`no sql/kinds/${name}.sql for kind ${kind.kind}`);
    const file = `${name}.sql`;
    const sections = parseFragment(file, text);
    fragments.set(kind, { file, sections, columns: stateColumnsOf(file, sections) });
  }
  // decide.sql's leading comment documents the file; the function keeps its own comments.
  const lines = sources.decide.split("\n");
  let start = 0;
  while (start < lines.length && lines[start]!.startsWith("--")) start++;
  let text = expandKinds(lines.slice(start).join("\n"), fragments)
    .replace("{{declare}}", declarations(fragments))
    .replaceAll("{{stride}}", String(POLICY_STRIDE));
  text = text.trimEnd();
  const left = (text.match(/\{\{[a-z_]+\}\}/g) ?? []).filter(
    (p) => !(TABLE_PLACEHOLDERS as readonly string[]).includes(p),
  );
  if (left.length > 0) throw new Error(`decide.sql: unknown placeholders ${left.join(", ")}`);
  return text;
}

/** The checked-in module holding the assembled text (src/sql/function.generated.ts). */
export function generatedModule(functionText: string): string {
  const escaped = functionText.replace(/[\\`]/g, "\\$&").replaceAll("${", "\\${");
  return `// Generated by \`npm run generate -w @sluice/store-postgres\` from src/sql/decide.sql and
// src/sql/kinds/*.sql (see src/sql/assemble.ts). Do not edit: edit those and generate again.

/** The decision function; \`{{table}}\`, \`{{execute}}\`, \`{{now}}\` are filled per table. */
export const DECIDE_FUNCTION_TEMPLATE = \`${escaped}\n\`;
`;
}
