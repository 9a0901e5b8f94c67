import { writeFileSync } from "node:fs";
import { tenantConfigJsonSchemaText } from "../packages/core/src/tenants/json-schema.js";

writeFileSync(
  new URL("../packages/core/tenants.schema.json", import.meta.url),
  tenantConfigJsonSchemaText(),
);
console.log("wrote packages/core/tenants.schema.json");
