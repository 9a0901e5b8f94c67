import type { Store } from "@sluice/core";
import { storeConformanceSuite } from "@sluice/core/testing";
import type pg from "pg";
import { afterAll, describe, it } from "vitest";
import { postgresStore } from "../src/index.js";
import { dropTable, makePool, runPostgres } from "./helpers.js";

const TABLE = "sluice_test_conformance";
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
