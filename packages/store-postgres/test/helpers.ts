import {
  evaluate,
  type PolicyStateRecord,
  type Store,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core";
import pg from "pg";
import { afterAll, beforeAll, expect } from "vitest";
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
 * Replaces `table`'s decision function (installed by `migrate()`) with the same function reading
 * "now" from a one-row table `<table>_now` instead of `clock_timestamp()`. Returns the setter.
 */
export async function installTestClock(
  pool: pg.Pool,
  table: string,
): Promise<(ms: number) => Promise<void>> {
  const clock = `"public"."${table}_now"`;
  const sql = executeFunctionSql(sqlNames("public", table));
  if (!sql.includes(SERVER_CLOCK))
    throw new Error("the function no longer reads the clock as expected");
  await pool.query(`DROP TABLE IF EXISTS ${clock}`);
  await pool.query(`CREATE TABLE ${clock} (ms bigint NOT NULL)`);
  await pool.query(`INSERT INTO ${clock} VALUES (0)`);
  await pool.query(sql.replace(SERVER_CLOCK, `SELECT ms INTO now_ms FROM ${clock};`));
  return async (ms) => {
    await pool.query(`UPDATE ${clock} SET ms = $1`, [ms]);
  };
}

export async function dropTestClock(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS "public"."${table}_now"`);
}

/**
 * Like `migratedStore`, but with the test clock of `installTestClock`: random sequences meet
 * every refill step, window end, lapse and due time at exactly the moment the reference math
 * sees, however busy the machine is.
 */
export function testClockStore(table: string): {
  readonly pool: pg.Pool;
  readonly store: PostgresStore;
  setNow(ms: number): Promise<void>;
} {
  const db = migratedStore(table);
  let setNow: (ms: number) => Promise<void> = async () => {
    throw new Error("the test clock is installed in beforeAll");
  };
  beforeAll(async () => {
    setNow = await installTestClock(db.pool, table);
  });
  afterAll(() => dropTestClock(db.pool, table));
  return {
    get pool() {
      return db.pool;
    },
    get store() {
      return db.store;
    },
    setNow: (ms) => setNow(ms),
  };
}

/**
 * `store` as a store with an injectable clock (for the conformance suite's exact mode): before a
 * request it sets the test clock to `clock()` when that moved. Requests issued together at one
 * time still leave together, so they share a batch as they would without the wrapper.
 */
export function atTestClock(
  store: PostgresStore,
  setNow: (ms: number) => Promise<void>,
  clock: () => number,
): Store {
  let set = Number.NaN;
  let setting: { ms: number; done: Promise<void> } | undefined;
  return {
    capabilities: { ...store.capabilities, clock: "injectable" },
    execute(request) {
      const ms = clock();
      if (ms === set) return store.execute(request);
      if (setting?.ms !== ms) {
        const done = setNow(ms).then(() => {
          set = ms;
        });
        setting = { ms, done };
      }
      return setting.done.then(() => store.execute(request));
    },
    close: () => store.close(),
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
