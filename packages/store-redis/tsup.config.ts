import { readFileSync, writeFileSync } from "node:fs";
import { defineConfig } from "tsup";
import { renderScriptModule } from "./scripts/inline-lua.mjs";

// The Lua script ships inlined as a string module, so ESM and CJS builds need no file access at
// runtime. Regenerated on every build; a test checks the committed copy is current.
const lua = readFileSync(new URL("./src/lua/decide.lua", import.meta.url), "utf8");
writeFileSync(new URL("./src/lua/decide-script.ts", import.meta.url), renderScriptModule(lua));

export default defineConfig({
  entry: { index: "src/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
  external: ["@sluice/core", "ioredis"],
});
