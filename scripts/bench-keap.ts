// npm run bench:keap: keap.fetch against the Keap simulator with the default PAT and OAuth
// limits (16 workers), 4 processes sharing one Redis store, and the naive client of the forum
// threads (4 processes, sleep 1 s between calls), side by side. Writes bench/results/keap.json.
// KEAP_BENCH_SECONDS shortens or lengthens the run (default 60).
import { mkdirSync, writeFileSync } from "node:fs";
import { allowedRequests } from "./keap/load.js";
import { runScenarios, type Scenario } from "./keap/scenarios.js";

const seconds = Number(process.env.KEAP_BENCH_SECONDS ?? 60);
const durationMs = seconds * 1000;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `keap-bench-${Date.now()}`;
// Default limits of the simulator (docs/keap.md "Profiles").
const LIMITS = { pat: { spike: 5, throttle: 240 }, oauth: { spike: 25, throttle: 1_500 } };

const paced = (profile: "pat" | "oauth", token: string, workers: number) =>
  ({ mode: "paced", profile, token, store: "memory", workers, durationMs }) as const;

const scenarios: (Scenario & { limits: { spike: number; throttle: number } })[] = [
  {
    name: "PAT, memory store, 16 workers",
    simulator: { profile: "pat" },
    processes: [paced("pat", "pat-bench", 16)],
    limits: LIMITS.pat,
  },
  {
    name: "OAuth, memory store, 16 workers",
    simulator: { profile: "oauth" },
    processes: [paced("oauth", "app-bench", 16)],
    limits: LIMITS.oauth,
  },
  {
    name: "PAT, 4 processes x 4 workers, one Redis store",
    simulator: { profile: "pat" },
    processes: Array.from({ length: 4 }, () => ({
      ...paced("pat", "pat-shared", 4),
      store: "redis" as const,
      redisUrl,
      prefix,
    })),
    limits: LIMITS.pat,
  },
  {
    name: "naive: 4 processes, sleep 1 s between calls, one PAT",
    simulator: { profile: "pat" },
    processes: Array.from({ length: 4 }, () => ({
      ...paced("pat", "pat-naive", 1),
      mode: "naive" as const,
    })),
    limits: LIMITS.pat,
  },
];

console.log(`Keap bench: ${scenarios.length} scenarios side by side for ${seconds} s each`);
const results = await runScenarios(scenarios);
const rows = results.map((r, i) => {
  const allowed = allowedRequests(scenarios[i]!.limits, durationMs);
  return {
    ...r,
    allowed,
    throughput: r.server.served / allowed,
    perMinute: (r.server.served * 60_000) / r.durationMs,
  };
});
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log("");
console.log(
  "scenario                                              served  allowed  share   429s (spike/throttle/quota/tenant)",
);
for (const r of rows) {
  const c = r.server.byCause;
  console.log(
    `${r.name.padEnd(54)} ${String(r.server.served).padStart(7)} ${String(r.allowed).padStart(8)}  ${pct(r.throughput).padStart(6)}  ${r.server.throttled} (${c.spike}/${c.throttle}/${c.quota}/${c.tenant})`,
  );
}
mkdirSync(new URL("../bench/results/", import.meta.url), { recursive: true });
const out = new URL("../bench/results/keap.json", import.meta.url);
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, seconds, results: rows }, null, 2)}\n`,
);
console.log(`\nwritten to bench/results/keap.json`);
