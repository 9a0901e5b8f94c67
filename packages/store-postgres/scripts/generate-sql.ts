// Assembles the decision function from src/sql/decide.sql and src/sql/kinds/*.sql into
// src/sql/function.generated.ts (run by `npm run build`; test/generated-sql.test.ts checks it).
import { writeFileSync } from "node:fs";
import { assembleDecideFunction, generatedModule } from "../src/sql/assemble.js";
import { GENERATED_MODULE, readSqlSources } from "../src/sql/sources.js";

writeFileSync(GENERATED_MODULE, generatedModule(assembleDecideFunction(readSqlSources())));
console.log(`wrote ${GENERATED_MODULE.pathname}`);
