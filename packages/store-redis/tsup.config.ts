import { defineConfig } from "tsup";
import { writeSources } from "./scripts/inline-lua.mjs";

// The Lua sources ship inlined as a string module, so ESM and CJS builds need no file access at
// runtime. Regenerated on every build; a test checks the committed copy is current.
writeSources(new URL("./src/lua/", import.meta.url));

export default defineConfig({
  entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  splitting: true,
  target: "node20",
  external: ["@sluice/core", "@sluice/core/store", "ioredis"],
});
