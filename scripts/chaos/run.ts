// `npm run chaos`: stores killed, paused and restarted under load, for every onStoreError mode;
// a Redis Cluster failover and a live reshard; a lease holder killed. Starts its own servers on
// loopback ports it picks and stops them afterwards. Prints a table, writes bench/results/chaos.json.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  createLimiter,
  isSluiceError,
  type Limiter,
  type OnStoreError,
  type Policy,
} from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { postgresStore } from "@sluice/store-postgres";
import { redisStore } from "@sluice/store-redis";
import { Cluster, Redis } from "ioredis";
import pg from "pg";
import { freePort, PostgresProcess, RedisClusterProcesses, RedisProcess } from "./servers.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORKERS = 32;
const TIMEOUT_MS = 500;
const BREAKER = { failures: 5, probeMs: 1_000 };
const OUTAGE_MS = 2_500;
const LIMIT = 1_000_000;
const policies: Policy[] = [{ kind: "fixedWindow", name: "fw", limit: LIMIT, window: "1h" }];

let unhandled = 0;
process.on("unhandledRejection", () => {
  unhandled++;
});

interface Row {
  scenario: string;
  store: string;
  fault: string;
  mode: string;
  /** Decisions issued between the fault and the store's return. */
  decisions: number;
  /** Latency of decisions issued after the breaker opened (or the whole outage without it). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  lateCharges: number | string;
  recoveryMs: number | string;
  errors: Record<string, number>;
  note?: string;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

const round = (x: number) => Math.round(x * 10) / 10;

interface Sample {
  at: number;
  ms: number;
  ok: boolean;
  admitted: boolean;
  degraded: boolean;
  code: string | undefined;
  key: number;
}

/** 32 workers taking on 8 keys, each about every 2 ms, until `stop()`. */
function load(limiter: Limiter, keys: string[]) {
  const samples: Sample[] = [];
  let running = true;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    let i = w;
    while (running) {
      const key = i++ % keys.length;
      const at = performance.now();
      try {
        const d = await limiter.take(keys[key]!);
        samples.push({
          at,
          ms: performance.now() - at,
          ok: true,
          admitted: d.allowed && d.degraded !== true,
          degraded: d.degraded === true,
          code: undefined,
          key,
        });
      } catch (e) {
        samples.push({
          at,
          ms: performance.now() - at,
          ok: false,
          admitted: false,
          degraded: false,
          code: isSluiceError(e) ? e.code : "OTHER",
          key,
        });
      }
      await sleep(2);
    }
  });
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

interface Target {
  name: string;
  /** A fresh store client for one scenario, and how to close it. */
  connect(): Promise<{
    store: ReturnType<typeof redisStore> | ReturnType<typeof postgresStore>;
    close(): Promise<void>;
  }>;
  kill(): Promise<void>;
  restart(): Promise<void>;
  pause(): void;
  resume(): void;
  /** A restart forgets the state (Redis without persistence). */
  forgetsOnRestart: boolean;
}

async function outageScenario(target: Target, fault: "kill" | "pause", mode: string): Promise<Row> {
  const { store, close } = await target.connect();
  const onStoreError: OnStoreError =
    mode === "fallback" ? { fallback: memoryStore() } : (mode as "deny" | "allow" | "throw");
  const prefix = `chaos${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const limiter = createLimiter({
    store,
    policies,
    prefix,
    onStoreError,
    timeoutMs: TIMEOUT_MS,
    breaker: BREAKER,
  });
  let downAt = Number.POSITIVE_INFINITY;
  limiter.on("storeDown", () => {
    if (downAt === Number.POSITIVE_INFINITY) downAt = performance.now();
  });
  const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
  const running = load(limiter, keys);
  await sleep(1_000);
  const faultAt = performance.now();
  if (fault === "kill") await target.kill();
  else target.pause();
  await sleep(OUTAGE_MS);
  if (fault === "kill") await target.restart();
  else target.resume();
  const backAt = performance.now();
  // Until the first decision made by the store again, then one more second.
  const end = backAt + 8_000;
  while (performance.now() < end) {
    if (running.samples.some((s) => s.at > backAt && s.ok && !s.degraded)) break;
    await sleep(20);
  }
  await sleep(1_000);
  await running.stop();
  await sleep(1_000); // anything still queued in a client reaches the store now, or never
  const samples = running.samples;
  const during = samples.filter((s) => s.at >= faultAt && s.at < backAt);
  const fast = during.filter((s) => s.at >= Math.min(downAt, backAt));
  const lat = (fast.length > 0 ? fast : during).map((s) => s.ms).sort((a, b) => a - b);
  const firstBack = samples
    .filter((s) => s.ok && !s.degraded && s.at + s.ms > backAt)
    .map((s) => s.at + s.ms)
    .sort((a, b) => a - b)[0];
  const errors: Record<string, number> = {};
  for (const s of samples) if (s.code !== undefined) errors[s.code] = (errors[s.code] ?? 0) + 1;
  const degraded = samples.filter((s) => s.degraded).length;
  if (degraded > 0) errors.degraded = degraded;
  // Late charges: what the store holds beyond the admissions its callers were told of.
  let late = 0;
  const checker = createLimiter({
    store,
    policies,
    prefix,
    onStoreError: "throw",
    timeoutMs: 5_000,
  });
  for (let k = 0; k < keys.length; k++) {
    const d = await checker.peek(keys[k]!);
    const charged = LIMIT - d.policies[0]!.remaining;
    const counted = samples.filter(
      (s) =>
        s.key === k &&
        s.admitted &&
        (fault !== "kill" || !target.forgetsOnRestart || s.at + s.ms > backAt),
    ).length;
    late += Math.max(0, charged - counted);
  }
  await close();
  return {
    scenario: "outage",
    store: target.name,
    fault: fault === "kill" ? "kill -9, restart" : "SIGSTOP, SIGCONT",
    mode,
    decisions: during.length,
    p50Ms: round(quantile(lat, 0.5)),
    p99Ms: round(quantile(lat, 0.99)),
    maxMs: round(lat[lat.length - 1] ?? 0),
    lateCharges: late,
    recoveryMs: firstBack === undefined ? "none" : Math.round(firstBack - backAt),
    errors,
  };
}

function redisTarget(server: RedisProcess): Target {
  return {
    name: "redis",
    forgetsOnRestart: true,
    async connect() {
      // ioredis defaults (offline queue on), a quick reconnect: the worst case for late charges.
      const client = new Redis({ host: "127.0.0.1", port: server.port, retryStrategy: () => 100 });
      client.on("error", () => {});
      return {
        store: redisStore({ client }),
        close: async () => {
          client.disconnect();
        },
      };
    },
    async kill() {
      server.kill();
    },
    async restart() {
      await server.start();
    },
    pause: () => server.signal("SIGSTOP"),
    resume: () => server.signal("SIGCONT"),
  };
}

function postgresTarget(server: PostgresProcess): Target {
  return {
    name: "postgres",
    forgetsOnRestart: false,
    async connect() {
      const pool = new pg.Pool({ ...server.connection, max: 16, connectionTimeoutMillis: 500 });
      pool.on("error", () => {}); // an idle client whose server died: the pool replaces it
      const store = postgresStore({ pool, table: "chaos_state" });
      await store.migrate();
      return {
        store,
        close: async () => {
          await store.close();
          await pool.end().catch(() => {});
        },
      };
    },
    async kill() {
      server.kill9();
    },
    async restart() {
      await server.start();
    },
    pause: () => server.signalAll("SIGSTOP"),
    resume: () => server.signalAll("SIGCONT"),
  };
}

/** Exact counts on a Redis Cluster while `disturb` runs under load (failover, reshard). */
async function clusterScenario(
  cluster: RedisClusterProcesses,
  name: string,
  disturb: () => Promise<void>,
): Promise<Row> {
  const client = new Cluster(cluster.seeds, {
    clusterRetryStrategy: () => 100,
  });
  client.on("error", () => {});
  const limit = 300;
  const exactPolicies: Policy[] = [{ kind: "fixedWindow", name: "fw", limit, window: "1h" }];
  const prefix = `chaos${process.pid}${name.replace(/\W/g, "")}`;
  const limiter = createLimiter({
    store: redisStore({ client }),
    policies: exactPolicies,
    prefix,
    onStoreError: "throw",
    timeoutMs: 2_000,
  });
  const keys = Array.from({ length: 64 }, (_, i) => `c${i}`);
  const running = load(limiter, keys);
  await sleep(500);
  const t0 = performance.now();
  await disturb();
  const disturbMs = performance.now() - t0;
  await sleep(500);
  await running.stop();
  await sleep(500);
  let mismatched = 0;
  let over = 0;
  let admittedTotal = 0;
  const checker = createLimiter({
    store: redisStore({ client }),
    policies: exactPolicies,
    prefix,
    onStoreError: "throw",
    timeoutMs: 5_000,
  });
  for (let k = 0; k < keys.length; k++) {
    const admitted = running.samples.filter((s) => s.key === k && s.admitted).length;
    admittedTotal += admitted;
    const charged = limit - (await checker.peek(keys[k]!)).policies[0]!.remaining;
    if (charged !== admitted) mismatched++;
    if (admitted > limit) over++;
  }
  const errors: Record<string, number> = {};
  for (const s of running.samples)
    if (s.code !== undefined) errors[s.code] = (errors[s.code] ?? 0) + 1;
  const lat = running.samples.map((s) => s.ms).sort((a, b) => a - b);
  client.disconnect();
  return {
    scenario: name,
    store: "redis cluster",
    fault: name,
    mode: "throw",
    decisions: running.samples.length,
    p50Ms: round(quantile(lat, 0.5)),
    p99Ms: round(quantile(lat, 0.99)),
    maxMs: round(lat[lat.length - 1] ?? 0),
    lateCharges: mismatched,
    recoveryMs: Math.round(disturbMs),
    errors,
    note: `${admittedTotal} admitted over ${keys.length} keys of limit ${limit}; keys where store != admitted: ${mismatched}; keys over limit: ${over}`,
  };
}

/** A process holding a lease is killed: the slot comes back when the lease expires. */
async function leaseHolderScenario(redisPort: number): Promise<Row> {
  const prefix = `chaoslease${process.pid}`;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "scripts", "chaos", "lease-holder.ts"),
      String(redisPort),
      prefix,
    ],
    { stdio: ["ignore", "pipe", "inherit"], cwd: ROOT },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (b: Buffer) => {
      if (b.toString().includes("held")) resolve();
    });
    child.on("exit", () => reject(new Error("the lease holder exited early")));
  });
  const client = new Redis({ host: "127.0.0.1", port: redisPort });
  const limiter = createLimiter({
    store: redisStore({ client }),
    policies: [{ kind: "concurrency", name: "slots", limit: 1, leaseTtl: "2s" }],
    prefix,
    onStoreError: "throw",
  });
  const killedAt = performance.now();
  child.kill("SIGKILL");
  const lease = await limiter.acquire("job", { timeoutMs: 5_000 });
  const ms = performance.now() - killedAt;
  await lease.release();
  client.disconnect();
  return {
    scenario: "lease holder killed",
    store: "redis",
    fault: "holder kill -9",
    mode: "throw",
    decisions: 1,
    p50Ms: round(ms),
    p99Ms: round(ms),
    maxMs: round(ms),
    lateCharges: 0,
    recoveryMs: Math.round(ms),
    errors: {},
    note: "leaseTtl 2 s; the slot frees when the dead holder's lease expires",
  };
}

function table(rows: Row[]): string {
  const head = [
    "store",
    "fault",
    "mode",
    "decisions",
    "p50 ms",
    "p99 ms",
    "max ms",
    "late",
    "recovery ms",
    "errors by code",
  ];
  const lines = rows.map((r) => [
    r.store,
    r.fault,
    r.mode,
    String(r.decisions),
    String(r.p50Ms),
    String(r.p99Ms),
    String(r.maxMs),
    String(r.lateCharges),
    String(r.recoveryMs),
    Object.entries(r.errors)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") || "-",
  ]);
  const out = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const l of lines) out.push(`| ${l.join(" | ")} |`);
  return out.join("\n");
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const rows: Row[] = [];
  const redis = new RedisProcess(await freePort());
  const postgres = new PostgresProcess(await freePort());
  let cluster: RedisClusterProcesses | undefined;
  const only = process.argv[2];
  try {
    await redis.start();
    if (!only || only === "postgres") {
      postgres.init();
      await postgres.start();
    }
    const modes = ["deny", "allow", "throw", "fallback"];
    const targets: Target[] = [];
    if (!only || only === "redis") targets.push(redisTarget(redis));
    if (!only || only === "postgres") targets.push(postgresTarget(postgres));
    for (const target of targets) {
      for (const fault of ["kill", "pause"] as const) {
        for (const mode of modes) {
          const row = await outageScenario(target, fault, mode);
          rows.push(row);
          console.log(table([row]).split("\n")[2]);
        }
      }
    }
    if (!only || only === "cluster") {
      cluster = await RedisClusterProcesses.start();
      const c = cluster;
      for (const [name, disturb] of [
        ["master failover", () => c.failover()],
        ["live reshard", () => c.reshard(2000)],
      ] as const) {
        const row = await clusterScenario(c, name, disturb);
        rows.push(row);
        console.log(table([row]).split("\n")[2], row.note);
      }
    }
    if (!only || only === "lease") {
      const row = await leaseHolderScenario(redis.port);
      rows.push(row);
      console.log(table([row]).split("\n")[2], row.note);
    }
  } finally {
    redis.stop();
    postgres.stop();
    cluster?.stop();
  }
  await sleep(200);
  console.log(
    `\nsluice chaos run, ${startedAt} (shared machine); timeoutMs ${TIMEOUT_MS}, breaker ${JSON.stringify(BREAKER)}, ${WORKERS} workers, outage ${OUTAGE_MS} ms\n`,
  );
  console.log(table(rows));
  console.log(`\nunhandled rejections: ${unhandled}`);
  const file = join(ROOT, "bench", "results", "chaos.json");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ startedAt, timeoutMs: TIMEOUT_MS, breaker: BREAKER, workers: WORKERS, outageMs: OUTAGE_MS, unhandledRejections: unhandled, rows }, null, 2)}\n`,
  );
  console.log(`wrote ${file}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
