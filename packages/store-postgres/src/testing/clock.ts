import type { Store } from "@sluice/core/store";
import type { Pool } from "pg";
import { nowFunctionSql } from "../sql/execute.js";
import { sqlNames } from "../sql/names.js";

/** Options of `installTestClock`. */
export interface TestClockOptions {
  /** A pool on the store's database. */
  readonly pool: Pool;
  /** The store's `table` and `schema` (same defaults as `postgresStore`). */
  readonly table?: string;
  /** The store's `schema` (default `public`). */
  readonly schema?: string;
}

/** A clock the test sets for every decision on one store table (from `installTestClock`). */
export interface TestClock {
  /** Every decision on the table from now on reads `ms` (epoch ms) as the time. */
  set(ms: number): Promise<void>;
  /** The server clock again; drops the clock's table. */
  uninstall(): Promise<void>;
}

/**
 * Replaces the table's clock, `<table>_now()` (installed by `migrate()`, the only place the
 * decision function and the sweep read the time), with one reading a one-row table
 * `<table>_clock`. Starts at 0. Run it after `migrate()`, which puts the server clock back.
 */
export async function installTestClock(options: TestClockOptions): Promise<TestClock> {
  const names = sqlNames(options.schema ?? "public", options.table ?? "sluice_state");
  const { pool } = options;
  const clockTable = `${names.schema}."${names.table.slice(1, -1)}_clock"`;
  await pool.query(`DROP TABLE IF EXISTS ${clockTable}`);
  await pool.query(`CREATE TABLE ${clockTable} (ms bigint NOT NULL)`);
  await pool.query(`INSERT INTO ${clockTable} VALUES (0)`);
  await pool.query(nowFunctionSql(names, `SELECT ms FROM ${clockTable}`));
  return {
    async set(ms) {
      await pool.query(`UPDATE ${clockTable} SET ms = $1`, [ms]);
    },
    async uninstall() {
      await pool.query(nowFunctionSql(names));
      await pool.query(`DROP TABLE IF EXISTS ${clockTable}`);
    },
  };
}

/**
 * `store` as a store with an injectable clock (for the core conformance suite's exact mode):
 * before a request it sets the test clock to `now()` when that moved. Requests issued together
 * at one time still leave together, so they share a batch as they would without the wrapper.
 */
export function atTestClock(store: Store, clock: TestClock, now: () => number): Store {
  let set = Number.NaN;
  let setting: { ms: number; done: Promise<void> } | undefined;
  return {
    capabilities: { ...store.capabilities, clock: "injectable" },
    execute(request) {
      const ms = now();
      if (ms === set) return store.execute(request);
      if (setting?.ms !== ms) {
        const done = clock.set(ms).then(() => {
          set = ms;
        });
        setting = { ms, done };
      }
      return setting.done.then(() => store.execute(request));
    },
    close: async () => {
      await store.close?.();
    },
  };
}
