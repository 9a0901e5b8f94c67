import { readFileSync, writeFileSync } from "node:fs";
import { withKindsReference } from "./kinds-docs.js";

const file = new URL("../docs/stores/writing-a-store.md", import.meta.url);
writeFileSync(file, withKindsReference(readFileSync(file, "utf8")));
console.log("updated docs/stores/writing-a-store.md");
