// Renders the Lua sources (src/lua/decide.lua, clock.lua, kinds/*.lua) as a TypeScript string
// module (src/lua/decide-script.ts), so ESM and CJS builds need no file access at runtime; script.ts
// assembles the scripts from it. Used by tsup.config.ts; run directly (`node
// scripts/inline-lua.mjs`) after editing a .lua file. A test checks the committed copy is current.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const LUA = new URL("../src/lua/", import.meta.url);

/** `token-bucket` -> `tokenBucket`: a kind module is named after its kind. */
const kindName = (file) => file.replace(/\.lua$/, "").replace(/-(\w)/g, (_, c) => c.toUpperCase());

/** The module text for the Lua files under `dir` (a file URL of src/lua/). */
export function renderSources(dir = LUA) {
  const read = (path) => readFileSync(new URL(path, dir), "utf8");
  const kinds = readdirSync(new URL("kinds/", dir))
    .filter((f) => f.endsWith(".lua"))
    .sort()
    .map((f) => `  ${kindName(f)}: ${JSON.stringify(read(`kinds/${f}`))},`);
  return [
    "// Generated from src/lua/*.lua by scripts/inline-lua.mjs: edit the .lua files, not this one.",
    `export const DECIDE_SOURCE: string = ${JSON.stringify(read("decide.lua"))};`,
    `export const CLOCK_SOURCE: string = ${JSON.stringify(read("clock.lua"))};`,
    "/** Each kind's module (kinds/<kind>.lua), by kind name. */",
    "export const KIND_SOURCES: Readonly<Record<string, string>> = {",
    ...kinds,
    "};",
    "",
  ].join("\n");
}

export function writeSources(dir = LUA) {
  writeFileSync(new URL("decide-script.ts", dir), renderSources(dir));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeSources();
