// CPU per decision of the PostgreSQL store, for one or more built checkouts side by side in one
// process, rows alternated (a loaded machine moves every figure; alternating keeps it fair).
//
//   node src/postgres-cpu.mjs [checkout ...]        (default: this checkout)
//
// Each checkout must be built (`npm run build`); its store and core are imported from its own
// packages/*/dist. Two measurements per checkout and round:
//   live:   the bench's loop (pool of 16, IN_FLIGHT takes in flight on 10,000 random keys, one
//           fixed window admitting every take) for PHASE_MS: ops/s, decisions per function call,
//           client CPU (process.cpuUsage) and the CPU of that pool's backends (utime + stime from
//           /proc/<pid>/stat, found by application_name) per decision.
//   replay: one call of BATCH takes captured as the store sends it, replayed CALLS times on one
//           connection: that backend's CPU per call (the function alone, no client share).
// ROUNDS rounds (default 3). POLICIES=3 uses bucket + minute + day instead of the fixed window.
// MODE=live or MODE=replay runs one of the two. DURABLE=0 passes durable: false.
// PostgreSQL must run on this machine (the backends' /proc entries are read).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PHASE_MS = Number(process.env.PHASE_MS ?? 3000);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 500);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 32);
const BATCH = Number(process.env.BATCH ?? 32);
const CALLS = Number(process.env.CALLS ?? 1000);
const MODE = process.env.MODE ?? "both";
const DURABLE = process.env.DURABLE !== "0";
const KEYS = 10_000;
const TICK_US = 10_000; // CLK_TCK 100

const POLICIES =
  process.env.POLICIES === "3"
    ? [
        {
          kind: "tokenBucket",
          name: "burst",
          capacity: 1e9,
          refill: { tokens: 1000, every: "1s" },
        },
        { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
        { kind: "fixedWindow", name: "day", limit: 1e9, window: "1d" },
      ]
    : [{ kind: "fixedWindow", name: "perMinute", limit: 1_000_000, window: "1m" }];

const checkouts = process.argv.slice(2);
if (checkouts.length === 0) checkouts.push(resolve(import.meta.dirname, "../.."));

function cpuTicks(pid) {
  // Fields after the command's closing parenthesis: utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function load(spec, tag) {
  // A checkout, optionally with store options: /path/to/checkout{"lanes":4,"maxBatch":8}
  const brace = spec.indexOf("{");
  const root = brace < 0 ? spec : spec.slice(0, brace);
  const options = brace < 0 ? {} : JSON.parse(spec.slice(brace));
  const dist = (p) => pathToFileURL(resolve(root, "packages", p, "dist/index.js")).href;
  const core = await import(dist("core"));
  const store = await import(dist("store-postgres"));
  const app = `sluice_cpu_${tag}_${process.pid}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 16, application_name: app });
  pool.on("error", () => {});
  const table = `bench_cpu_${tag}_${process.pid}`;
  const st = store.postgresStore({ pool, table, durable: DURABLE, ...options });
  await st.migrate();
  // Count function calls and capture one for the replay.
  let calls = 0;
  let captured;
  const query = pool.query.bind(pool);
  pool.query = (config, ...rest) => {
    if (typeof config === "object" && String(config.name ?? "").endsWith(":execute")) {
      calls++;
      if (captured === undefined && String(config.values?.[2]).split(",").length === BATCH)
        captured = config;
    }
    return query(config, ...rest);
  };
  const limiter = core.createLimiter({ store: st, policies: POLICIES });
  return {
    root: spec,
    tag,
    app,
    pool,
    table,
    limiter,
    calls: () => calls,
    captured: () => captured,
  };
}

async function backendPids(pool, app) {
  const r = await pool.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [app]);
  return r.rows.map((x) => x.pid);
}

async function live(b) {
  const keyOf = () => `user-${Math.floor(Math.random() * KEYS)}`;
  const loop = async (until, count) => {
    while (Date.now() < until) {
      await b.limiter.take(keyOf());
      count.n++;
    }
  };
  const warm = { n: 0 };
  const warmUntil = Date.now() + WARMUP_MS;
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(warmUntil, warm)));
  const pids = await backendPids(b.pool, b.app);
  const server0 = pids.reduce((s, p) => s + cpuTicks(p), 0);
  const client0 = process.cpuUsage();
  const calls0 = b.calls();
  const done = { n: 0 };
  const start = performance.now();
  const until = Date.now() + PHASE_MS;
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(until, done)));
  const seconds = (performance.now() - start) / 1000;
  const client = process.cpuUsage(client0);
  const server = pids.reduce((s, p) => s + cpuTicks(p), 0) - server0;
  return {
    ops: Math.round(done.n / seconds),
    perCall: done.n / (b.calls() - calls0),
    clientUs: (client.user + client.system) / done.n,
    serverUs: (server * TICK_US) / done.n,
  };
}

async function replay(b) {
  let config = b.captured();
  if (config === undefined) {
    // Make one call of exactly BATCH takes: they queue behind a first call of one.
    await Promise.all([
      b.limiter.take("cap-first"),
      ...Array.from({ length: BATCH }, (_, i) => b.limiter.take(`cap-${i}`)),
    ]);
    config = b.captured();
  }
  if (config === undefined) throw new Error(`${b.tag}: no call of ${BATCH} takes captured`);
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
  const q = { name: config.name, text: config.text, values: config.values, rowMode: "array" };
  for (let i = 0; i < 50; i++) await client.query(q);
  // PERF=<file prefix>: the backend's profile over the replay (perf record), one file per build.
  const perf = process.env.PERF
    ? spawn(
        "perf",
        ["record", "-q", "-g", "-p", String(pid), "-o", `${process.env.PERF}-${b.tag}.data`],
        {
          stdio: "ignore",
        },
      )
    : undefined;
  if (perf) await new Promise((r) => setTimeout(r, 300));
  const t0 = cpuTicks(pid);
  const w0 = performance.now();
  for (let i = 0; i < CALLS; i++) await client.query(q);
  if (perf) {
    perf.kill("SIGINT");
    await new Promise((r) => perf.on("exit", r));
  }
  const wallUs = ((performance.now() - w0) * 1000) / CALLS;
  const us = ((cpuTicks(pid) - t0) * TICK_US) / CALLS;
  await client.end();
  return { us, wallUs };
}

const builds = [];
// The tables and functions go whatever happens (the database is shared).
try {
  for (const [i, root] of checkouts.entries()) builds.push(await load(root, `b${i}`));
  const results = new Map(builds.map((b) => [b.tag, { live: [], replay: [] }]));
  const fmt = (n, d = 1) => n.toFixed(d);
  console.log(
    `${POLICIES.length} policies, ${IN_FLIGHT} in flight, replay of ${BATCH} takes x ${CALLS}, durable ${DURABLE}`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order each round too.
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    for (const b of order) {
      const r = results.get(b.tag);
      let line = `round ${round} ${b.root}:`;
      if (MODE !== "replay") {
        const l = await live(b);
        r.live.push(l);
        line += ` live ${l.ops} ops/s, ${fmt(l.perCall)} per call, client ${fmt(l.clientUs)} us, server ${fmt(l.serverUs)} us per decision;`;
      }
      if (MODE !== "live") {
        const p = await replay(b);
        r.replay.push(p);
        line += ` replay ${fmt(p.us, 0)} us CPU (${fmt(p.us / BATCH)} per decision), wall ${fmt(p.wallUs, 0)} us per call`;
      }
      console.log(line);
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  for (const b of builds) {
    const r = results.get(b.tag);
    const parts = [];
    if (r.live.length > 0) {
      parts.push(
        `live median ${median(r.live.map((x) => x.ops))} ops/s, client ${fmt(median(r.live.map((x) => x.clientUs)))} us, server ${fmt(median(r.live.map((x) => x.serverUs)))} us per decision, ${fmt(median(r.live.map((x) => x.perCall)))} per call`,
      );
    }
    if (r.replay.length > 0) {
      parts.push(
        `replay median ${fmt(median(r.replay.map((x) => x.us)), 0)} us CPU per call of ${BATCH}`,
      );
    }
    console.log(`${b.root}: ${parts.join("; ")}`);
  }
} finally {
  for (const b of builds) {
    await b.pool.query(`DROP FUNCTION IF EXISTS "public"."${b.table}_execute"`).catch(() => {});
    await b.pool.query(`DROP FUNCTION IF EXISTS "public"."${b.table}_now"`).catch(() => {});
    await b.pool.query(`DROP TABLE IF EXISTS "public"."${b.table}"`);
    await b.pool.end();
  }
}
