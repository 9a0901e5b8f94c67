// npm run bench:keap: keap.fetch against the Keap simulator's spike models (0-4 ms jitter), with
// 16 workers in one process and 4 processes x 4 workers sharing one Redis store, and the naive
// client of the forum threads (4 processes, sleep 1 s between calls). Scenarios run one after the
// other (the naive one beside the first), so that few processes share the cores at once.
// On a machine shared with other work, what is measured should be the client, not the scheduler:
// where permitted, the main threads of simulators, the bench's own redis-server and clients run
// with real-time scheduling (scripts/keap/real-time.ts; KEAP_BENCH_RT=0: clients at nice -5 and
// simulators at -10 instead).
// Writes bench/results/keap.json.
// KEAP_BENCH_SECONDS sets each scenario's length (default 60); KEAP_BENCH_ONLY (a regular
// expression) runs only the scenarios whose name matches; KEAP_BENCH_REDIS_URL uses that Redis
// instead of a redis-server of the bench's own; KEAP_DEBUG=1 prints every pacing change and
// throttled answer of every client, KEAP_DEBUG=2 every request too.
import { mkdirSync, writeFileSync } from "node:fs";
import type { KeapSpikeModel } from "@sluice/adapter-keap/simulator";
import { allowedRequests } from "./keap/load.js";
import { startOwnRedis } from "./keap/own-redis.js";
import { runScenarios, type Scenario, type ScenarioResult } from "./keap/scenarios.js";

const seconds = Number(process.env.KEAP_BENCH_SECONDS ?? 60);
const only =
  process.env.KEAP_BENCH_ONLY === undefined ? undefined : new RegExp(process.env.KEAP_BENCH_ONLY);
const durationMs = seconds * 1000;
process.env.KEAP_BENCH_RT ??= "1";
const ownRedis = process.env.KEAP_BENCH_REDIS_URL === undefined ? await startOwnRedis() : undefined;
const redisUrl = process.env.KEAP_BENCH_REDIS_URL ?? ownRedis!.url;
const prefix = `keap-bench-${process.pid}-${Date.now()}`;
// Default limits of the simulator (docs/keap.md "Profiles").
const LIMITS = { pat: { spike: 5, throttle: 240 }, oauth: { spike: 25, throttle: 1_500 } };
const JITTER_MS = 4;

type Profile = "pat" | "oauth";
interface BenchScenario extends Scenario {
  group: number;
  model: KeapSpikeModel;
  limits: { spike: number; throttle: number };
}

const oneProcess = (profile: Profile, token: string) => [
  { mode: "paced", profile, token, store: "memory", workers: 16, durationMs } as const,
];
const fourOnRedis = (profile: Profile, token: string) =>
  Array.from({ length: 4 }, () => ({
    mode: "paced" as const,
    profile,
    token,
    store: "redis" as const,
    redisUrl,
    prefix: `${prefix}-${token}`,
    workers: 4,
    durationMs,
  }));
const paced = (
  group: number,
  profile: Profile,
  model: KeapSpikeModel,
  shared: boolean,
): BenchScenario => {
  const token = `${profile}-${model}-${shared ? "redis" : "memory"}`;
  return {
    group,
    model,
    name: `${profile === "pat" ? "PAT" : "OAuth"}, ${model}, ${shared ? "4 processes x 4 workers, one Redis store" : "16 workers, memory store"}`,
    simulator: { profile, spikeModel: model, jitterMs: JITTER_MS },
    processes: shared ? fourOnRedis(profile, token) : oneProcess(profile, token),
    limits: LIMITS[profile],
  };
};

const all: BenchScenario[] = [
  paced(1, "pat", "sliding", false),
  paced(2, "pat", "sliding", true),
  {
    group: 1,
    model: "bucket",
    name: "naive: 4 processes, sleep 1 s between calls, one PAT, bucket",
    simulator: { profile: "pat", spikeModel: "bucket", jitterMs: JITTER_MS },
    processes: Array.from({ length: 4 }, () => ({
      mode: "naive" as const,
      profile: "pat" as const,
      token: "pat-naive",
      store: "memory" as const,
      workers: 1,
      durationMs,
    })),
    limits: LIMITS.pat,
  },
  paced(3, "oauth", "sliding", false),
  paced(4, "oauth", "sliding", true),
  paced(5, "oauth", "bucket", false),
  paced(6, "oauth", "bucket", true),
  paced(7, "oauth", "perProcessor", false),
];
const scenarios = all.filter((s) => only === undefined || only.test(s.name));

const groups = [...new Set(scenarios.map((s) => s.group))];
console.log(
  `Keap bench: ${scenarios.length} scenarios of ${seconds} s in ${groups.length} groups (the scenarios of a group side by side)`,
);
const results: (ScenarioResult & { model: KeapSpikeModel; group: number })[] = [];
try {
  for (const group of groups) {
    const batch = scenarios.filter((s) => s.group === group);
    console.log(`group ${group}: ${batch.map((s) => s.name).join("; ")}`);
    const out = await runScenarios(batch);
    for (const [i, r] of out.entries()) results.push({ ...r, model: batch[i]!.model, group });
  }
} finally {
  ownRedis?.stop();
}

const rows = results.map((r) => {
  const s = scenarios.find((x) => x.name === r.name)!;
  const allowed = allowedRequests(s.limits, durationMs);
  const sent = r.server.served + r.server.throttled;
  return {
    ...r,
    allowed,
    throughput: r.server.served / allowed,
    perMinute: (r.server.served * 60_000) / r.durationMs,
    sent,
    spikeShare: sent === 0 ? 0 : r.server.byCause.spike / sent,
  };
});
const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
console.log("");
console.log(
  `${"scenario".padEnd(62)} served allowed  share    sent  spike 429s (of sent)  throttle/quota/tenant  429s to callers`,
);
for (const r of rows) {
  const c = r.server.byCause;
  console.log(
    `${r.name.padEnd(62)} ${String(r.server.served).padStart(6)} ${String(r.allowed).padStart(7)} ${pct(r.throughput).padStart(6)} ${String(r.sent).padStart(7)}  ${String(c.spike).padStart(5)} (${pct(r.spikeShare, 2)})`.padEnd(
      124,
    ) +
      `${c.throttle}/${c.quota}/${c.tenant}`.padEnd(23) +
      String(r.clients.throttled),
  );
}
mkdirSync(new URL("../bench/results/", import.meta.url), { recursive: true });
const out = new URL("../bench/results/keap.json", import.meta.url);
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, seconds, jitterMs: JITTER_MS, scheduling: process.env.KEAP_BENCH_RT === "1" ? "real time (main threads)" : "nice -5 / -10", results: rows }, null, 2)}\n`,
);
console.log(`\nwritten to bench/results/keap.json`);
