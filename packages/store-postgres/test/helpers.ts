import {
  evaluate,
  type PolicyStateRecord,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core/store";
import { installTestClock, type TestClock } from "@sluice/store-postgres/testing";
import pg from "pg";
import { afterAll, beforeAll, expect } from "vitest";
import { type PostgresStore, postgresStore } from "../src/index.js";

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

/** Drops the table and functions of one test file. */
export async function dropTable(pool: pg.Pool, table: string, schema = "public"): Promise<void> {
  await pool.query(`DROP FUNCTION IF EXISTS "${schema}"."${table}_execute"`);
  await pool.query(`DROP FUNCTION IF EXISTS "${schema}"."${table}_now"`);
  await pool.query(`DROP TABLE IF EXISTS "${schema}"."${table}"`);
}

/** A table name no other test run uses at the same time (tests share one database). */
export const uniqueTable = (name: string): string =>
  `${name}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

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

/**
 * Like `migratedStore`, but at a test clock (`@sluice/store-postgres/testing`): random sequences
 * meet every refill step, window end, lapse and due time at exactly the moment the reference
 * math sees, however busy the machine is.
 */
export function testClockStore(table: string): {
  readonly pool: pg.Pool;
  readonly store: PostgresStore;
  setNow(ms: number): Promise<void>;
} {
  const db = migratedStore(table);
  let clock: TestClock | undefined;
  beforeAll(async () => {
    clock = await installTestClock({ pool: db.pool, table });
  });
  afterAll(() => clock?.uninstall());
  return {
    get pool() {
      return db.pool;
    },
    get store() {
      return db.store;
    },
    setNow: (ms) => {
      if (clock === undefined) throw new Error("the test clock is installed in beforeAll");
      return clock.set(ms);
    },
  };
}

/** A request with no lease, observation or window bounds: take, refund or peek of `cost`. */
export function plainRequest(
  policies: StoreRequest["policies"],
  keys: readonly string[],
  partition: string,
  op: "take" | "refund" | "peek",
  cost: number,
): StoreRequest {
  return {
    op,
    policies,
    keys,
    partition,
    cost,
    acquire: false,
    leaseId: undefined,
    leaseTtlMs: undefined,
    observations: undefined,
    learnedLimitTtlMs: 1000,
    windowBounds: undefined,
  };
}

/**
 * Checks answers against evaluate() run in issue order at the store's clock, with one model of
 * every key. The clock must not go back within a `clockScope` (one per partition where calls
 * may overlap; one for all when they run one after another).
 */
export function expectIssueOrder(
  requests: readonly StoreRequest[],
  results: readonly StoreResult[],
  clockScope: (r: StoreRequest) => string = () => "",
): void {
  const model = new Map<string, PolicyStateRecord>();
  const clocks = new Map<string, number>();
  requests.forEach((r, i) => {
    const got = results[i]!;
    const scope = clockScope(r);
    expect(got[1]!).toBeGreaterThanOrEqual(clocks.get(scope) ?? 0);
    clocks.set(scope, got[1]!);
    const want = evaluate(
      r,
      r.keys.map((k) => model.get(k)),
      got[1]!,
    );
    expect(got).toEqual(want.result);
    if (want.write) {
      r.keys.forEach((k, j) => {
        const state = want.states[j];
        if (state === undefined) model.delete(k);
        else model.set(k, state);
      });
    }
  });
}

/**
 * The server's clock now (epoch ms), the clock decisions and deadlines use: a test reads it instead
 * of this host's `Date.now`, which may be off (or faked).
 */
export async function serverNowMs(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ ms: number }>(
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms",
  );
  return Math.floor(rows[0]!.ms);
}
