import {
  compareWithReference,
  expectReportsOfAnySizeBounded,
  type TimeDriver,
} from "@sluice/core/testing";
import { describe, it } from "vitest";
import { redisReachable } from "./helpers.js";
import { useTestClockStore } from "./test-clock.js";

const reachable = await redisReachable();

// Capacities and limits up to 2^53 - 1, periods of a century, costs and reports around 2^31,
// 2^52 and 2^53: the script computes in Lua's doubles, as evaluate() does; they must agree on
// everything the schema accepts, expiry times included.
describe.skipIf(!reachable)("redis store at the largest values the schema accepts", () => {
  const ctx = useTestClockStore();
  const time: TimeDriver = {
    now: () => ctx.now,
    pass: async (ms) => {
      ctx.now += ms;
    },
  };

  it("agrees with evaluate() on every kind", { timeout: 300_000 }, async () => {
    await compareWithReference({ store: ctx.store, time, extreme: true, numRuns: 300 });
  });

  it("takes a server's report of any size, held to what the policy may be", async () => {
    // The engine's requests carry deadlines on the client's clock.
    ctx.now = Date.now();
    await expectReportsOfAnySizeBounded(ctx.store);
  });
});
