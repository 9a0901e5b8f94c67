import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "simulator/index": "src/simulator/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  splitting: true,
  target: "node20",
  external: ["@sluice/core"],
});
