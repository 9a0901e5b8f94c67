import {
  compareWithReference,
  expectReportsOfAnySizeBounded,
  type TimeDriver,
} from "@sluice/core/testing";
import { describe, it } from "vitest";
import { runPostgres, testClockStore, uniqueTable } from "./helpers.js";

// Capacities and limits up to 2^53 - 1, periods of a century, costs and reports around 2^31,
// 2^52 and 2^53: the function computes in bigints, evaluate() in doubles; they must agree on
// everything the schema accepts (and never overflow).
describe.runIf(runPostgres)("postgres store at the largest values the schema accepts", () => {
  const db = testClockStore(uniqueTable("sluice_test_extremes"));
  let now = 1_800_000_000_000;
  const time: TimeDriver = {
    now: () => now,
    pass: async (ms) => {
      now += ms;
      await db.setNow(now);
    },
  };

  it("agrees with evaluate() on every kind", { timeout: 300_000 }, async () => {
    await time.pass(0);
    await compareWithReference({ store: db.store, time, extreme: true, numRuns: 300 });
  });

  it("takes a server's report of any size, held to what the policy may be", async () => {
    // The engine's requests carry deadlines on the client's clock.
    now = Date.now();
    await db.setNow(now);
    await expectReportsOfAnySizeBounded(db.store);
  });
});
