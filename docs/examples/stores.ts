// The "sharing limits across processes" section of the getting-started guide. Needs a Redis and a
// PostgreSQL server: REDIS_URL=... DATABASE_URL=... npx tsx docs/examples/stores.ts
import { fileURLToPath } from "node:url";
import { createLimiter, type Policy } from "@sluice/core";
import { postgresStore } from "@sluice/store-postgres";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import pg from "pg";

const policies: Policy[] = [
  { kind: "tokenBucket", name: "burst", capacity: 5, refill: { tokens: 1, every: "1s" } },
];

export async function withRedis(url: string, key: string): Promise<number> {
  const client = new Redis(url);
  try {
    const limiter = createLimiter({ store: redisStore({ client }), policies });
    const decision = await limiter.take(key);
    await limiter.reset(key);
    return decision.remaining;
  } finally {
    client.disconnect(); // the store never closes your client
  }
}

export async function withPostgres(
  url: string,
  key: string,
  table = "sluice_state", // the default; tests pass a table of their own
): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 1_000 });
  // Without a listener, an idle client whose server goes away takes the process down.
  pool.on("error", () => {});
  try {
    const store = postgresStore({ pool, table });
    await store.migrate(); // idempotent: creates the table and function if missing
    const limiter = createLimiter({ store, policies });
    const decision = await limiter.take(key);
    await limiter.reset(key);
    return decision.remaining;
  } finally {
    await pool.end();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const key = `docs-example-${process.pid}`;
  if (process.env.REDIS_URL)
    console.log("redis remaining:", await withRedis(process.env.REDIS_URL, key));
  if (process.env.DATABASE_URL) {
    console.log("postgres remaining:", await withPostgres(process.env.DATABASE_URL, key));
  }
}
