import { readFileSync, writeFileSync } from "node:fs";
import { KIND_LIST } from "@sluice/core/store";
import { describe, expect, it } from "vitest";

const DOC = new URL("../../../docs/stores/redis.md", import.meta.url);
const BEGIN =
  "<!-- redis payloads: rendered from KINDS by packages/store-redis/test/layout-doc.test.ts -->";
const END = "<!-- end of redis payloads -->";

/** The payload table of docs/stores/redis.md: each kind's state fields as its entry holds them. */
function payloadTable(): string {
  const rows = KIND_LIST.map((spec) => {
    const parts: string[] = [];
    const lists = spec.state.filter((f) => f.shape === "list");
    for (const field of spec.state) {
      if (field.shape === "scalar") parts.push(`${field.name} (${field.unit})`);
      else if (field.shape === "map") {
        parts.push(`(${field.name}: a sorted set at the policy's own state key)`);
      } else if (field === lists[0]) {
        // Parallel lists travel as pairs, then the total of the last one (a cache of its sum).
        const names = lists.map((l) => l.name).join(" and ");
        const last = lists.at(-1)!.name;
        parts.push(`pair count (4 bytes), then ${names} per pair, then the total of the ${last}`);
      }
    }
    return `| ${spec.kind} | ${spec.code} | ${parts.join(", ")} |`;
  });
  return ["| kind | code | payload |", "| --- | ---: | --- |", ...rows].join("\n");
}

describe("docs/stores/redis.md", () => {
  it("shows the entry payloads of the kinds table", () => {
    const doc = readFileSync(DOC, "utf8");
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    expect(start).toBeGreaterThanOrEqual(0);
    const rendered = `${BEGIN}\n${payloadTable()}\n${END}`;
    if (process.env.UPDATE_GOLDEN) {
      writeFileSync(DOC, doc.slice(0, start) + rendered + doc.slice(end + END.length));
      return;
    }
    expect(doc.slice(start, end + END.length)).toBe(rendered);
  });
});
