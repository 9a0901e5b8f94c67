import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

// Tests run against the TypeScript sources, not the build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@sluice\/core\/testing$/, replacement: src("core/src/testing/index.ts") },
      { find: /^@sluice\/core\/store$/, replacement: src("core/src/store/index.ts") },
      { find: /^@sluice\/core$/, replacement: src("core/src/index.ts") },
      { find: /^@sluice\/http$/, replacement: src("http/src/index.ts") },
      { find: /^@sluice\/http\/(express|fastify|hono|node)$/, replacement: src("http/src/$1.ts") },
      { find: /^@sluice\/store-memory$/, replacement: src("store-memory/src/index.ts") },
      {
        find: /^@sluice\/store-redis\/testing$/,
        replacement: src("store-redis/src/testing/index.ts"),
      },
      { find: /^@sluice\/store-redis$/, replacement: src("store-redis/src/index.ts") },
      {
        find: /^@sluice\/store-postgres\/testing$/,
        replacement: src("store-postgres/src/testing/index.ts"),
      },
      { find: /^@sluice\/store-postgres$/, replacement: src("store-postgres/src/index.ts") },
      {
        find: /^@sluice\/adapter-keap\/simulator$/,
        replacement: src("adapter-keap/src/simulator/index.ts"),
      },
      { find: /^@sluice\/adapter-keap$/, replacement: src("adapter-keap/src/index.ts") },
      { find: /^@sluice\/otel$/, replacement: src("otel/src/index.ts") },
    ],
  },
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "scripts/**/*.test.ts",
      "examples/**/*.test.ts",
      "docs/examples/**/*.test.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".tmp/vitest-results.json" },
  },
});
