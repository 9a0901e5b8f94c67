// Renders src/lua/decide.lua as a TypeScript string module (src/lua/decide-script.ts).
// Used by tsup.config.ts; run directly (`node scripts/inline-lua.mjs`) after editing the script.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** @param {string} lua */
export function renderScriptModule(lua) {
  return `// Generated from decide.lua by scripts/inline-lua.mjs: edit the .lua file, not this one.\nexport const DECIDE_LUA: string = ${JSON.stringify(lua)};\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const lua = readFileSync(new URL("../src/lua/decide.lua", import.meta.url), "utf8");
  writeFileSync(new URL("../src/lua/decide-script.ts", import.meta.url), renderScriptModule(lua));
}
