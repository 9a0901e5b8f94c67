import { readFileSync, writeFileSync } from "node:fs";
import { withReference } from "../packages/core/src/tenants/json-schema.js";

const file = new URL("../docs/configuration.md", import.meta.url);
writeFileSync(file, withReference(readFileSync(file, "utf8")));
console.log("updated docs/configuration.md");
