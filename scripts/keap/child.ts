// One process of the Keap bench: runs a load against a simulator and prints one JSON line.
// argv[2] is a JSON LoadSpec.
import { setPriority } from "node:os";
import type { KeapClientProfile } from "@sluice/adapter-keap";
import type { Store } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import { type LoadResult, naiveLoad, pacedLoad } from "./load.js";
import { realTimeMainThread } from "./real-time.js";

export interface LoadSpec {
  url: string;
  mode: "paced" | "naive";
  profile: KeapClientProfile;
  token: string;
  store: "memory" | "redis";
  redisUrl?: string;
  prefix?: string;
  workers: number;
  durationMs: number;
  spikeMargin?: number;
  strict?: boolean;
  /** Epoch ms at which every process starts sending. */
  startAt: number;
  /**
   * This process's clock runs this far ahead of the other hosts' (negative: behind), as on a host
   * whose clock is off: `Date.now` is shifted once the load starts.
   */
  clockSkewMs?: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
// Pacing is timing: on a machine shared with other work, run ahead of it so that the bench
// measures the client, not the scheduler. With KEAP_BENCH_RT=1 (npm run bench:keap) the main
// thread, where pacing runs, gets real-time scheduling (SCHED_FIFO) where permitted, and the
// process's helper threads stay with everything else: a thread spinning on a helper of its own
// priority could starve it. Otherwise (and where not permitted) nice -5.
if (!(process.env.KEAP_BENCH_RT === "1" && realTimeMainThread(10))) {
  try {
    setPriority(-5);
  } catch {
    // Not permitted: run at normal priority.
  }
}

let redis: Redis | undefined;
let store: Store;
if (spec.store === "redis") {
  redis = new Redis(spec.redisUrl ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
  store = redisStore({ client: redis });
} else {
  store = memoryStore();
}
await new Promise((r) => setTimeout(r, Math.max(0, spec.startAt - Date.now())));
if (spec.clockSkewMs !== undefined) {
  const hostNow = Date.now;
  const skewMs = spec.clockSkewMs;
  Date.now = () => hostNow() + skewMs;
}
let result: LoadResult;
if (spec.mode === "naive") {
  result = await naiveLoad({
    url: spec.url,
    token: spec.token,
    durationMs: spec.durationMs,
    sleepMs: 1000,
  });
} else {
  const identity =
    spec.profile === "oauth" ? { app: spec.token } : { tenant: "bench", token: spec.token };
  result = await pacedLoad({
    url: spec.url,
    profile: spec.profile,
    store,
    identity,
    workers: spec.workers,
    durationMs: spec.durationMs,
    ...(spec.spikeMargin === undefined ? {} : { spikeMargin: spec.spikeMargin }),
    ...(spec.strict === undefined ? {} : { strict: spec.strict }),
    ...(spec.prefix === undefined ? {} : { prefix: spec.prefix }),
  });
}
redis?.disconnect();
process.stdout.write(`${JSON.stringify(result)}\n`);
