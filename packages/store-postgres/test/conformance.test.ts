import type { Store } from "@sluice/core";
import { storeConformanceSuite } from "@sluice/core/testing";
import { atTestClock, installTestClock, type TestClock } from "@sluice/store-postgres/testing";
import type pg from "pg";
import { afterAll, describe, it } from "vitest";
import { postgresStore } from "../src/index.js";
import { dropTable, makePool, runPostgres, uniqueTable } from "./helpers.js";

const TABLE = uniqueTable("sluice_test_conformance");
let pool: pg.Pool | undefined;

if (runPostgres) {
  storeConformanceSuite({
    name: "postgres",
    async makeStore() {
      pool = makePool({ max: 4 });
      const store = postgresStore({ pool, table: TABLE });
      await store.migrate();
      return store;
    },
    async closeStore(store: Store) {
      await store.close?.();
    },
    // Server-clock mode runs a quarter of these, with real sleeps.
    numRuns: 200,
  });
  afterAll(async () => {
    if (pool === undefined) return;
    await dropTable(pool, TABLE);
    await pool.end();
  });
} else {
  describe("postgres store conformance", () => {
    it.skip("needs PostgreSQL (set DATABASE_URL; with CI set it never skips)", () => {});
  });
}

// The same suite in its exact mode: the table's clock reads "now" from a table the suite's fake
// clock sets (@sluice/store-postgres/testing), so every run compares each answer with the
// reference math at that time, including jumps of hours across a time zone's offset change.
const CLOCKED_TABLE = uniqueTable("sluice_test_conformance_clocked");
let clockedPool: pg.Pool | undefined;
let testClock: TestClock | undefined;

if (runPostgres) {
  storeConformanceSuite({
    name: "postgres (test clock)",
    async makeStore({ clock }) {
      clockedPool = makePool({ max: 4 });
      await dropTable(clockedPool, CLOCKED_TABLE);
      const store = postgresStore({ pool: clockedPool, table: CLOCKED_TABLE });
      await store.migrate();
      testClock = await installTestClock({ pool: clockedPool, table: CLOCKED_TABLE });
      return atTestClock(store, testClock, clock);
    },
    async closeStore(store: Store) {
      await store.close?.();
    },
    numRuns: 200,
  });
  afterAll(async () => {
    if (clockedPool === undefined) return;
    await testClock?.uninstall();
    await dropTable(clockedPool, CLOCKED_TABLE);
    await clockedPool.end();
  });
}
