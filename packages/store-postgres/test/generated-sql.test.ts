import { readFileSync } from "node:fs";
import { KIND_LIST } from "@sluice/core/store";
import { describe, expect, it } from "vitest";
import { assembleDecideFunction, generatedModule } from "../src/sql/assemble.js";
import { DECIDE_FUNCTION_TEMPLATE } from "../src/sql/function.generated.js";
import {
  isLearnedField,
  kindFileName,
  layoutTable,
  snakeCase,
  stateColumns,
} from "../src/sql/layout.js";
import {
  DOCS_PAGE,
  GENERATED_MODULE,
  readSqlSources,
  withLayoutTable,
} from "../src/sql/sources.js";

const sources = readSqlSources();

/** `-- @section <name>` bodies of one fragment. */
function section(kind: string, name: string): string {
  const text = sources.kinds[kindFileName(kind)]!;
  const start = text.indexOf(`-- @section ${name}\n`);
  if (start < 0) return "";
  const rest = text.slice(start + `-- @section ${name}\n`.length);
  const end = rest.indexOf("-- @section ");
  return end < 0 ? rest : rest.slice(0, end);
}

describe("the decision function's SQL", () => {
  it("is checked in as assembled from decide.sql and the kind fragments (npm run generate)", () => {
    const assembled = assembleDecideFunction(sources);
    expect(`${assembled}\n`).toBe(DECIDE_FUNCTION_TEMPLATE);
    expect(readFileSync(GENERATED_MODULE, "utf8")).toBe(generatedModule(assembled));
  });

  it("documents the state layout the kinds table derives (docs/stores/postgres.md)", () => {
    const page = readFileSync(DOCS_PAGE, "utf8");
    expect(page).toBe(withLayoutTable(page, layoutTable()));
  });

  it("has one fragment per kind of the kinds table, and no other", () => {
    expect(Object.keys(sources.kinds).sort()).toEqual(
      KIND_LIST.map((k) => kindFileName(k.kind)).sort(),
    );
  });

  it("reads the time only through the table's now function", () => {
    expect(DECIDE_FUNCTION_TEMPLATE).not.toMatch(/clock_timestamp|now\(\)|current_timestamp/i);
    expect(DECIDE_FUNCTION_TEMPLATE.match(/\{\{now\}\}\(\)/g)).toHaveLength(1);
  });

  it("decodes and encodes each kind's state fields in the columns the layout derives", () => {
    for (const spec of KIND_LIST) {
      const decode = section(spec.kind, "decode");
      const encode = section(spec.kind, "encode");
      const read = [...decode.matchAll(/^(\w+) := s\.(\w+);$/gm)];
      const written = [...encode.matchAll(/^s\.(\w+) := (\w+);$/gm)];
      const columns = stateColumns(spec)
        .filter((c) => !isLearnedField(c.field))
        .flatMap((c) => c.columns);
      expect(read.map((m) => m[2]).sort(), spec.kind).toEqual([...columns].sort());
      expect(written.map((m) => m[1]).sort(), spec.kind).toEqual([...columns].sort());
      // Written back from the variables it was read into.
      expect(new Map(written.map((m) => [m[1], m[2]]))).toEqual(
        new Map(read.map((m) => [m[2], m[1]])),
      );
      // Scalars and lists go by their names in the kinds table.
      for (const {
        field,
        columns: [column],
      } of stateColumns(spec)) {
        if (isLearnedField(field) || field.shape === "map") continue;
        expect(read.find((m) => m[2] === column)?.[1], `${spec.kind}.${field.name}`).toBe(
          snakeCase(field.name),
        );
      }
    }
  });

  it("keeps the token bucket's reset and the sliding window's slot cut-off in one place each", () => {
    const all = [sources.decide, ...Object.values(sources.kinds)].join("\n");
    const count = (re: RegExp) => all.match(re)?.length ?? 0;
    expect(count(/reset_at_ms := consumed_at_ms \+/g)).toBe(1);
    expect(count(/\(now_ms - policy_window_ms\)::numeric \/ policy_precision_ms/g)).toBe(1);
    // ...and the one place is used once: the answer, the bring-to-now.
    expect(
      DECIDE_FUNCTION_TEMPLATE.match(/reset_at_ms := s\.b \+ \(s\.a \+ policy_refill_tokens/g),
    ).toHaveLength(1);
  });
});
