import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { type PostgresStore, postgresStore } from "../src/index.js";
import { executeFunctionSql } from "../src/sql/execute.js";
import { sqlNames } from "../src/sql/names.js";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * Whether PostgreSQL answers. Without it the suites skip locally; with CI set they run (and fail),
 * so a missing server can never pass CI silently.
 */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export const runPostgres = process.env.CI ? true : await postgresReachable();

export function makePool(options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8, ...options });
  // An idle client losing its connection emits on the pool; tests that cut connections expect it.
  pool.on("error", () => {});
  return pool;
}

/** Drops the table and function of one test file. */
export async function dropTable(pool: pg.Pool, table: string, schema = "public"): Promise<void> {
  await pool.query(`DROP FUNCTION IF EXISTS "${schema}"."${table}_execute"`);
  await pool.query(`DROP TABLE IF EXISTS "${schema}"."${table}"`);
}

/**
 * A pool and a migrated store on a fresh `table` for one describe block, dropped afterwards.
 * Read `pool` and `store` inside tests (they are set in beforeAll).
 */
export function migratedStore(table: string): {
  readonly pool: pg.Pool;
  readonly store: PostgresStore;
} {
  let pool: pg.Pool | undefined;
  let store: PostgresStore | undefined;
  beforeAll(async () => {
    pool = makePool();
    await dropTable(pool, table);
    store = postgresStore({ pool, table });
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    if (pool !== undefined) {
      await dropTable(pool, table);
      await pool.end();
    }
  });
  return {
    get pool() {
      return pool!;
    },
    get store() {
      return store!;
    },
  };
}

const SERVER_CLOCK = "now_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;";

/**
 * Like `migratedStore`, but the decision function reads "now" from a one-row table that the test
 * sets (`setNow`), instead of `clock_timestamp()`: the rest of the function is the one `migrate()`
 * installs, so random sequences meet every refill step, window end, lapse and due time at exactly
 * the moment the reference math sees, however busy the machine is.
 */
export function testClockStore(table: string): {
  readonly pool: pg.Pool;
  readonly store: PostgresStore;
  setNow(ms: number): Promise<void>;
} {
  const db = migratedStore(table);
  const clock = `"public"."${table}_now"`;
  beforeAll(async () => {
    const sql = executeFunctionSql(sqlNames("public", table));
    if (!sql.includes(SERVER_CLOCK))
      throw new Error("the function no longer reads the clock as expected");
    await db.pool.query(`DROP TABLE IF EXISTS ${clock}`);
    await db.pool.query(`CREATE TABLE ${clock} (ms bigint NOT NULL)`);
    await db.pool.query(`INSERT INTO ${clock} VALUES (0)`);
    await db.pool.query(sql.replace(SERVER_CLOCK, `SELECT ms INTO now_ms FROM ${clock};`));
  });
  afterAll(async () => {
    await db.pool.query(`DROP TABLE IF EXISTS ${clock}`);
  });
  return {
    get pool() {
      return db.pool;
    },
    get store() {
      return db.store;
    },
    async setNow(ms: number) {
      await db.pool.query(`UPDATE ${clock} SET ms = $1`, [ms]);
    },
  };
}
