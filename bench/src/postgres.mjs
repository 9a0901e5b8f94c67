// PostgreSQL store benchmark: sluice against rate-limiter-flexible's RateLimiterPostgres, both
// over a pg.Pool of 16 with 32 calls in flight, and raw `SELECT 1` on the same pool as the floor.
// Imports sluice by package name: run after `npm run build`.
import { createLimiter } from "@sluice/core";
import { postgresStore } from "@sluice/store-postgres";
import pg from "pg";
import { RateLimiterPostgres } from "rate-limiter-flexible";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const POOL_SIZE = 16;
const IN_FLIGHT = 32;
const KEYS = 10_000;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 4000);
const WARMUP_MS = 800;
// The RLF row and sluice's batched rows take turns in ROUNDS slices (see alternate()).
const ROUNDS = Number(process.env.BENCH_PG_ROUNDS ?? 5);

// Tables of this run only: another bench may run against the same database.
const SLUICE_TABLE = `bench_sluice_${process.pid}`;
const RLF_TABLE = `bench_rlf_${process.pid}`;

const keyOf = () => `user-${Math.floor(Math.random() * KEYS)}`;

/** Runs `op` with IN_FLIGHT concurrent loops for `ms`; returns completed calls per second. */
async function measure(op, ms = PHASE_MS, warmupMs = WARMUP_MS) {
  const loop = async (until, count) => {
    let n = 0;
    while (Date.now() < until) {
      await op();
      n++;
    }
    count.n += n;
  };
  const warm = { n: 0 };
  const warmUntil = Date.now() + warmupMs;
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(warmUntil, warm)));
  const done = { n: 0 };
  const start = performance.now();
  const until = Date.now() + ms;
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(until, done)));
  return Math.round(done.n / ((performance.now() - start) / 1000));
}

/**
 * The rows of `ops` take turns in ROUNDS slices of PHASE_MS / ROUNDS each (a slow spell of a
 * shared machine falls on every row alike): each row's median slice, and each round's slices.
 */
async function alternate(ops) {
  const names = Object.keys(ops);
  const slices = Object.fromEntries(names.map((name) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      // After the first round a short ramp-up is enough: plans and connections are warm.
      slices[name].push(await measure(ops[name], PHASE_MS / ROUNDS, r === 0 ? WARMUP_MS : 200));
    }
  }
  const rows = Object.fromEntries(names.map((name) => [name, median(slices[name])]));
  return { rows, slices };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

function newPool() {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL_SIZE });
  pool.on("error", () => {});
  return pool;
}

// The same rule for both: 1,000,000 per minute per key (every call admitted, so both do a write).
const POLICY = { kind: "fixedWindow", name: "perMinute", limit: 1_000_000, window: "1m" };

export async function run() {
  const rows = [];
  const notes = [];

  const raw = newPool();
  rows.push({
    name: "pg SELECT 1 (reference)",
    opsPerSec: await measure(() => raw.query("SELECT 1")),
  });
  await raw.end();

  const rlfPool = newPool();
  const rlf = await new Promise((resolve, reject) => {
    const limiter = new RateLimiterPostgres(
      {
        storeClient: rlfPool,
        tableName: RLF_TABLE,
        points: 1_000_000,
        duration: 60,
        clearExpiredByTimeout: false,
      },
      (err) => (err ? reject(err) : resolve(limiter)),
    );
  });

  const sluicePool = newPool();
  const batched = postgresStore({ pool: sluicePool, table: SLUICE_TABLE });
  await batched.migrate();
  const limiter = createLimiter({ store: batched, policies: [POLICY] });
  // Same, with commits that do not wait for the WAL flush (opt-in).
  const durable = postgresStore({ pool: sluicePool, table: SLUICE_TABLE, durable: false });
  const durableLimiter = createLimiter({ store: durable, policies: [POLICY] });

  const { rows: turns, slices } = await alternate({
    rlf: () => rlf.consume(keyOf(), 1),
    sluice: () => limiter.take(keyOf()),
    durable: () => durableLimiter.take(keyOf()),
  });
  const rlfOps = turns.rlf;
  const sluiceOps = turns.sluice;
  rows.push(
    { name: "rate-limiter-flexible RateLimiterPostgres consume", opsPerSec: rlfOps },
    { name: "sluice postgresStore take (batched, shipped default)", opsPerSec: sluiceOps },
    { name: "sluice postgresStore take (batched, durable: false)", opsPerSec: turns.durable },
  );
  await rlfPool.query(`DROP TABLE IF EXISTS "${RLF_TABLE}"`);
  await rlfPool.end();

  // Same store with batching off: one request per function call, at most 2 calls in flight (lanes).
  const single = postgresStore({ pool: sluicePool, table: SLUICE_TABLE, maxBatch: 1 });
  const singleLimiter = createLimiter({ store: single, policies: [POLICY] });
  const singleOps = await measure(() => singleLimiter.take(keyOf()));
  rows.push({ name: "sluice postgresStore take (maxBatch 1)", opsPerSec: singleOps });

  // One hot key: every call contends for one row.
  const hotOps = await measure(() => limiter.take("hot"));
  rows.push({ name: "sluice postgresStore take, one hot key (batched)", opsPerSec: hotOps });
  const hotSingleOps = await measure(() => singleLimiter.take("hot"));
  rows.push({
    name: "sluice postgresStore take, one hot key (maxBatch 1)",
    opsPerSec: hotSingleOps,
  });

  await batched.close();
  await durable.close();
  await single.close();
  await sluicePool.query(`DROP FUNCTION IF EXISTS "public"."${SLUICE_TABLE}_execute"`);
  await sluicePool.query(`DROP FUNCTION IF EXISTS "public"."${SLUICE_TABLE}_now"`);
  await sluicePool.query(`DROP TABLE IF EXISTS "public"."${SLUICE_TABLE}"`);
  await sluicePool.end();

  notes.push(
    `pg.Pool max ${POOL_SIZE} for every row, ${IN_FLIGHT} calls in flight, ${KEYS} random keys, ${PHASE_MS} ms per row after ${WARMUP_MS} ms warm-up`,
    `RLF and sluice's batched rows take turns in ${ROUNDS} slices of ${PHASE_MS / ROUNDS} ms (each after 200 ms of ramp-up); a row is its median slice, sluice / RLF the median of the rounds' ratios`,
    "sluice batching: decisions that wait while a call is in flight go as the next function call (one round trip); maxBatch 1 turns it off",
    "sluice commits wait for the WAL flush like RLF's (durable: true, the default); the durable: false row shows what not waiting gains",
  );
  return {
    suite: "postgres",
    rows,
    ratios: [
      {
        name: "sluice / RLF",
        // The median of the rounds' ratios: each compares slices measured a second apart.
        value: round(median(slices.sluice.map((x, i) => x / slices.rlf[i]))),
      },
      { name: "sluice batched / single", value: round(sluiceOps / singleOps) },
    ],
    notes,
  };
}

const round = (x) => Math.round(x * 100) / 100;
