import { readdirSync, readFileSync } from "node:fs";
import type { SqlSources } from "./assemble.js";

/** decide.sql and sql/kinds/*.sql as the generator reads them (build time and tests only). */
export function readSqlSources(): SqlSources {
  const dir = new URL("./", import.meta.url);
  const kinds: Record<string, string> = {};
  for (const file of readdirSync(new URL("kinds/", dir))) {
    if (file.endsWith(".sql")) {
      kinds[file.slice(0, -4)] = readFileSync(new URL(`kinds/${file}`, dir), "utf8");
    }
  }
  return { decide: readFileSync(new URL("decide.sql", dir), "utf8"), kinds };
}

/** Where the generated module is checked in. */
export const GENERATED_MODULE = new URL("./function.generated.ts", import.meta.url);

/** The user docs page whose state layout table is generated (in the repository only). */
export const DOCS_PAGE = new URL("../../../../docs/stores/postgres.md", import.meta.url);

const LAYOUT_START = "<!-- state layout: generated from the kinds table by npm run generate -->";
const LAYOUT_END = "<!-- end of state layout -->";

/** `page` with the text between the layout markers replaced by `table`. */
export function withLayoutTable(page: string, table: string): string {
  const start = page.indexOf(LAYOUT_START);
  const end = page.indexOf(LAYOUT_END);
  if (start < 0 || end < start) throw new Error("docs/stores/postgres.md lacks the layout markers");
  return `${page.slice(0, start + LAYOUT_START.length)}\n${table}\n${page.slice(end)}`;
}
