// Assembles the decision function from src/sql/decide.sql and src/sql/kinds/*.sql into
// src/sql/function.generated.ts, and writes the state layout table into docs/stores/postgres.md
// (run by `npm run build`; test/generated-sql.test.ts checks both are current).
import { readFileSync, writeFileSync } from "node:fs";
import { assembleDecideFunction, generatedModule } from "../src/sql/assemble.js";
import { layoutTable } from "../src/sql/layout.js";
import {
  DOCS_PAGE,
  GENERATED_MODULE,
  readSqlSources,
  withLayoutTable,
} from "../src/sql/sources.js";

writeFileSync(GENERATED_MODULE, generatedModule(assembleDecideFunction(readSqlSources())));
console.log(`wrote ${GENERATED_MODULE.pathname}`);
// The docs page is not part of the published package: skip it where it is absent.
let page: string | undefined;
try {
  page = readFileSync(DOCS_PAGE, "utf8");
} catch {}
if (page !== undefined) {
  writeFileSync(DOCS_PAGE, withLayoutTable(page, layoutTable()));
  console.log(`wrote the layout table into ${DOCS_PAGE.pathname}`);
}
