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
