import { createLimiter } from "@sluice/core";
import { compareWithReference, type TimeDriver } from "@sluice/core/testing";
import { describe, expect, it } from "vitest";
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
    const limiter = createLimiter({
      store: ctx.store,
      prefix: `x${process.pid}`,
      policies: [
        { kind: "tokenBucket", name: "b", capacity: 5, refill: { tokens: 1, every: "1h" } },
        { kind: "pool", name: "p", capacity: 5, refill: { tokens: 2, every: "1h" } },
        { kind: "fixedWindow", name: "w", limit: 5, window: "1h" },
        { kind: "slidingWindow", name: "s", limit: 5, window: "1h" },
      ],
    });
    const huge = { remaining: 1e300, limit: 1e300, resetAtMs: 1e300 };
    await limiter.reconcile("k", [
      { policy: "b", ...huge },
      { policy: "p", ...huge },
      { policy: "w", ...huge },
      { policy: "s", ...huge },
    ]);
    const perHour = Math.floor(2 ** 52 / 3_600_000);
    const largest = [perHour, perHour * 2, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
    const d = await limiter.take("k", { cost: 4 });
    expect(d.allowed).toBe(true);
    expect(d.policies.map((p) => [p.limit, p.remaining])).toEqual(
      largest.map((limit) => [limit, limit - 4]),
    );
  });
});
