// Client instructions per decision of the PostgreSQL store, counted by callgrind (see
// redis-instructions.mjs for the method): the bench's loop (pool of 16, 32 in flight, 10,000
// keys, one fixed window admitting every take) for N decisions after WARMUP, minus a run of 0.
//
//   for n in 0 10000; do
//     valgrind --tool=callgrind node --single-threaded --expose-gc \
//       bench/src/postgres-instructions.mjs $n [checkout] 2>&1 | grep Collected
//   done
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";

const [nArg = "10000", checkout = resolve(import.meta.dirname, "../..")] = process.argv.slice(2);
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const IN_FLIGHT = 32;
const KEYS = 10_000;
const WARMUP = Number(process.env.WARMUP ?? 10_000);
const dist = (p) => pathToFileURL(resolve(checkout, "packages", p, "dist/index.js")).href;
const { createLimiter } = await import(dist("core"));
const { postgresStore } = await import(dist("store-postgres"));

const table = `bench_ins_${process.pid}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 16 });
const store = postgresStore({ pool, table });
await store.migrate();
// A long timeoutMs: under valgrind a call can take longer than the default 1 s.
const limiter = createLimiter({
  store,
  timeoutMs: 600_000,
  policies: [{ kind: "fixedWindow", name: "perMinute", limit: 1_000_000, window: "1m" }],
});
const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
let unusual = 0;

async function loop(n) {
  const each = Math.ceil(n / IN_FLIGHT);
  const worker = async (w) => {
    for (let j = 0, i = w * 7919; j < each; j++, i += 104_729) {
      const d = await limiter.take(ids[i % KEYS]);
      if (!d.allowed || d.degraded) unusual++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
}

await loop(WARMUP);
globalThis.gc();
await loop(Number(nArg));
globalThis.gc();
await store.close();
await pool.query(`DROP FUNCTION IF EXISTS "public"."${table}_execute"`);
await pool.query(`DROP FUNCTION IF EXISTS "public"."${table}_now"`);
await pool.query(`DROP TABLE IF EXISTS "public"."${table}"`);
await pool.end();
process.stdout.write(`postgres: ${nArg} decisions, ${unusual} refused or degraded\n`);
