// Load time and memory of a 100,000-tenant configuration: npx tsx --expose-gc scripts/bench-tenants.ts

import type { Policy } from "../packages/core/src/policy/schema.js";
import { parseTenantConfig } from "../packages/core/src/tenants/parse.js";
import { createTenantRegistry } from "../packages/core/src/tenants/registry.js";
import { memoryStore } from "../packages/store-memory/src/index.js";

const N = Number(process.argv[2] ?? 100_000);
const profiles: Record<string, Policy[]> = {
  pat: [
    {
      kind: "tokenBucket",
      name: "spike",
      scope: ["token"],
      capacity: 10,
      refill: { tokens: 10, every: "1s" },
    },
    { kind: "fixedWindow", name: "quota", scope: ["tenant"], limit: 30000, window: "1d" },
  ],
};
const tenants: Record<string, unknown> = {};
for (let i = 0; i < N; i++) {
  tenants[`tenant-${i}`] =
    i % 3 === 0
      ? { profile: "pat", overrides: { quota: { limit: 1000 + i } } }
      : i % 3 === 1
        ? { profile: "pat" }
        : { policies: [{ kind: "fixedWindow", name: "daily", limit: 2500, window: "1d" }] };
}
const text = JSON.stringify({ defaults: { profile: "pat" }, tenants });
const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = () => {
  gc?.();
  return (process.memoryUsage().heapUsed / 1048576).toFixed(1);
};
console.log(
  `${N} tenants, ${(text.length / 1048576).toFixed(1)} MB JSON; heap before ${heapMb()} MB`,
);
let t = performance.now();
const json: unknown = JSON.parse(text);
console.log(`JSON.parse ${(performance.now() - t).toFixed(0)} ms`);
t = performance.now();
parseTenantConfig(json, { profiles });
console.log(`parseTenantConfig ${(performance.now() - t).toFixed(0)} ms`);
t = performance.now();
const registry = createTenantRegistry({ config: json, store: memoryStore(), profiles });
console.log(
  `createTenantRegistry (parse + validate) ${(performance.now() - t).toFixed(0)} ms; heap ${heapMb()} MB`,
);
t = performance.now();
for (let i = 0; i < 10_000; i++) registry.limiter(`tenant-${i}`);
console.log(
  `10,000 limiters created in ${(performance.now() - t).toFixed(0)} ms (unreferenced afterwards)`,
);
await new Promise((r) => setTimeout(r, 50));
console.log(`heap after dropping them ${heapMb()} MB`);
t = performance.now();
registry.update(json);
console.log(`update (re-validate ${N}) ${(performance.now() - t).toFixed(0)} ms`);
