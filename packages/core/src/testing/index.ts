/**
 * `@sluice/core/testing`: the conformance suite every store runs. It registers vitest tests
 * (vitest and fast-check are optional peer dependencies of @sluice/core).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePolicies } from "../policy/compile.js";
import type { Policy } from "../policy/schema.js";
import { RESULT_HEADER, RESULT_STRIDE, type Store } from "../store.js";
import { nextOffsetChange } from "./dst.js";
import { Model, RequestFactory, runScenario, type TimeDriver } from "./model.js";
import { type Scenario, scenarioArb } from "./scenario.js";

export interface StoreConformanceOptions {
  /** Used in test titles. */
  name: string;
  /**
   * Builds the store under test. `clock` is the suite's fake clock: a store whose
   * `capabilities.clock` is "injectable" must use it; a "server" store ignores it.
   */
  makeStore(ctx: { clock: () => number }): Store | Promise<Store>;
  closeStore?(store: Store): void | Promise<void>;
  /** fast-check runs per property (default 100). */
  numRuns?: number;
  /** Server-clock mode: longest real sleep of one "time passes" step (default 40 ms). */
  timeScaleMs?: number;
}

/** A Sunday in March 2026, days before New York's DST change: zoned windows get exercised. */
const FAKE_EPOCH = Date.UTC(2026, 2, 7, 12, 0, 0);

let runCounter = 0;
const uniquePrefix = (name: string) =>
  `conf-${name}-${process.pid}-${Date.now().toString(36)}-${(runCounter++).toString(36)}`;

export function storeConformanceSuite(options: StoreConformanceOptions): void {
  const { name, numRuns = 100, timeScaleMs = 40 } = options;
  let fakeNow = FAKE_EPOCH;
  let store: Store;
  let mode: "injectable" | "server" = "injectable";

  const time: TimeDriver = {
    now: () => (mode === "injectable" ? fakeNow : Date.now()),
    pass: async (ms) => {
      if (mode === "injectable") fakeNow += ms;
      else if (ms > 0) await new Promise((r) => setTimeout(r, Math.min(ms, timeScaleMs)));
    },
  };

  /** Moves the fake clock (forward only) to hours before the next DST change of a zoned policy. */
  const jumpNearOffsetChange = (scenario: Scenario) => {
    const zoned = scenario.policies.find((p) => p.kind === "fixedWindow" && p.timeZone);
    if (zoned?.kind !== "fixedWindow" || zoned.timeZone === undefined) return;
    const change = nextOffsetChange(zoned.timeZone, fakeNow);
    if (change !== undefined) fakeNow = Math.max(fakeNow, change - scenario.leadMs);
  };

  describe(`${name} store conformance`, () => {
    beforeAll(async () => {
      store = await options.makeStore({ clock: () => fakeNow });
      mode = store.capabilities.clock;
    });
    afterAll(async () => {
      await options.closeStore?.(store);
    });

    it("agrees with the reference math on random sequences of every operation", async () => {
      const long = mode === "injectable";
      await fc.assert(
        fc.asyncProperty(scenarioArb(long ? 300 : timeScaleMs, long), async (scenario) => {
          if (mode === "injectable") jumpNearOffsetChange(scenario);
          await runScenario(store, scenario, time, uniquePrefix(name));
        }),
        { numRuns: mode === "injectable" ? numRuns : Math.max(1, Math.ceil(numRuns / 4)) },
      );
    }, 600_000);

    const limiterOf = (policies: Policy[]) =>
      new RequestFactory(compilePolicies(policies), uniquePrefix(name), undefined, store, time);

    /** Fires `n` decisions at once on one key; returns how many were admitted. */
    async function burst(policies: Policy[], n: number, acquire = false): Promise<number> {
      const factory = limiterOf(policies);
      const key = factory.plan.resolve("hot-key");
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          store.execute(
            factory.build(
              key,
              acquire
                ? { op: "take", cost: 1, acquire: true, leaseId: `l${i}` }
                : { op: "take", cost: 1 },
            ),
          ),
        ),
      );
      return results.filter((r) => r[0] === 1).length;
    }

    it("admits exactly a fixed window's limit when 200 decisions arrive at once", async () => {
      expect(await burst([{ kind: "fixedWindow", name: "w", limit: 50, window: "1h" }], 200)).toBe(
        50,
      );
    });

    it("admits exactly a pool's capacity when 200 decisions arrive at once", async () => {
      expect(
        await burst(
          [{ kind: "pool", name: "p", capacity: 30, refill: { tokens: 1, every: "1h" } }],
          200,
        ),
      ).toBe(30);
    });

    it("admits exactly a token bucket's capacity when 200 decisions arrive at once", async () => {
      expect(
        await burst(
          [{ kind: "tokenBucket", name: "b", capacity: 20, refill: { tokens: 1, every: "1h" } }],
          200,
        ),
      ).toBe(20);
    });

    it("grants exactly `limit` leases when 40 acquires arrive at once", async () => {
      expect(
        await burst([{ kind: "concurrency", name: "c", limit: 5, leaseTtl: "1h" }], 40, true),
      ).toBe(5);
    });

    it("charges nothing to the other policies when one refuses", async () => {
      const policies: Policy[] = [
        { kind: "fixedWindow", name: "w", limit: 10, window: "1h" },
        { kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: "1h" } },
      ];
      const factory = limiterOf(policies);
      const key = factory.plan.resolve("k");
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          store.execute(factory.build(key, { op: "take", cost: 1 })),
        ),
      );
      expect(results.filter((r) => r[0] === 1)).toHaveLength(3);
      const peek = await store.execute(factory.build(key, { op: "peek" }));
      expect(peek[RESULT_HEADER + 1]).toBe(7); // the window was charged 3 times, not 20
      expect(peek[RESULT_HEADER + RESULT_STRIDE + 1]).toBe(0);
    });

    it("forgets a key on reset, leases included", async () => {
      const policies: Policy[] = [
        { kind: "fixedWindow", name: "w", limit: 2, window: "1h" },
        { kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" },
      ];
      const factory = limiterOf(policies);
      const key = factory.plan.resolve("k");
      const model = new Model(store);
      await model.apply(
        factory.build(key, { op: "take", cost: 2, acquire: true, leaseId: "a" }),
        "acquire",
      );
      const blocked = await model.apply(
        factory.build(key, { op: "take", cost: 1, acquire: true, leaseId: "b" }),
        "acquire",
      );
      expect(blocked[0]).toBe(0);
      await model.apply(factory.build(key, { op: "reset" }), "reset");
      const again = await model.apply(
        factory.build(key, { op: "take", cost: 2, acquire: true, leaseId: "c" }),
        "acquire",
      );
      expect(again[0]).toBe(1);
    });

    it("frees a slot on release and refuses to renew a released lease", async () => {
      const factory = limiterOf([{ kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" }]);
      const key = factory.plan.resolve("k");
      const model = new Model(store);
      expect(
        (
          await model.apply(
            factory.build(key, { op: "take", cost: 1, acquire: true, leaseId: "a" }),
            "acquire a",
          )
        )[0],
      ).toBe(1);
      expect(
        (
          await model.apply(
            factory.build(key, { op: "take", cost: 1, acquire: true, leaseId: "b" }),
            "acquire b",
          )
        )[0],
      ).toBe(0);
      expect(
        (await model.apply(factory.build(key, { op: "renew", leaseId: "a" }), "renew a"))[0],
      ).toBe(1);
      await model.apply(factory.build(key, { op: "release", leaseId: "a" }), "release a");
      await model.apply(factory.build(key, { op: "release", leaseId: "a" }), "release a again");
      expect(
        (await model.apply(factory.build(key, { op: "renew", leaseId: "a" }), "renew a"))[0],
      ).toBe(0);
      expect(
        (
          await model.apply(
            factory.build(key, { op: "take", cost: 1, acquire: true, leaseId: "b" }),
            "acquire b",
          )
        )[0],
      ).toBe(1);
    });

    it("answers for a key back at its default exactly as for a fresh key", async () => {
      const policies: Policy[] = [
        { kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: "1h" } },
        { kind: "pool", name: "p", capacity: 3, refill: { tokens: 1, every: "1h" } },
        { kind: "fixedWindow", name: "f", limit: 3, window: "1h", align: "firstUse" },
        { kind: "slidingWindow", name: "s", limit: 3, window: "1h" },
        { kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" },
      ];
      const factory = limiterOf(policies);
      const used = factory.plan.resolve("used");
      const fresh = factory.plan.resolve("fresh");
      const model = new Model(store);
      await model.apply(
        factory.build(used, { op: "take", cost: 2, acquire: true, leaseId: "a" }),
        "acquire",
      );
      await model.apply(factory.build(used, { op: "release", leaseId: "a" }), "release");
      await model.apply(factory.build(used, { op: "refund", cost: 2 }), "refund");
      const back = Array.from(await model.apply(factory.build(used, { op: "peek" }), "peek used"));
      const never = Array.from(
        await model.apply(factory.build(fresh, { op: "peek" }), "peek fresh"),
      );
      // Equal but for the clock (a server clock moves between the two calls).
      const clockFree = (r: number[]) => r.map((v) => (v === r[1] ? "now" : v));
      expect(clockFree(back)).toEqual(clockFree(never));
      for (let i = 0; i < policies.length; i++) {
        const o = RESULT_HEADER + RESULT_STRIDE * i;
        expect(back[o + 1]).toBe(back[o]); // remaining = limit
        expect(back[o + 2]).toBe(back[1]); // reset now: already full
      }
    });

    it("refuses a cost above a limit as never fitting and charges nothing", async () => {
      const factory = limiterOf([
        { kind: "fixedWindow", name: "w", limit: 10, window: "1h" },
        { kind: "pool", name: "p", capacity: 3, refill: { tokens: 1, every: "1h" } },
      ]);
      const key = factory.plan.resolve("k");
      const model = new Model(store);
      const refused = await model.apply(factory.build(key, { op: "take", cost: 4 }), "take 4");
      expect(refused[0]).toBe(0);
      expect(refused[RESULT_HEADER + RESULT_STRIDE + 3]).toBe(-1);
      expect(refused[RESULT_HEADER + 1]).toBe(10);
      expect(refused[RESULT_HEADER + RESULT_STRIDE + 1]).toBe(3);
    });

    it("frees the slot of a lease left to expire and refuses to renew it", async () => {
      // Half a "time passes" step, so real sleeps in server-clock mode outlast it with margin.
      const ttl = Math.max(1, Math.floor(timeScaleMs / 2));
      const factory = limiterOf([{ kind: "concurrency", name: "c", limit: 1, leaseTtl: ttl }]);
      const key = factory.plan.resolve("k");
      const model = new Model(store);
      const acquire = (leaseId: string) =>
        model.apply(
          factory.build(key, { op: "take", cost: 1, acquire: true, leaseId }),
          `acquire ${leaseId}`,
        );
      const held = await acquire("a");
      expect(held[0]).toBe(1);
      expect(held[2]).toBe(held[1]! + ttl);
      await time.pass(timeScaleMs);
      expect((await acquire("b"))[0]).toBe(1);
      const renew = await model.apply(factory.build(key, { op: "renew", leaseId: "a" }), "renew a");
      expect(renew[0]).toBe(0);
    });

    it("renews nothing for a lease it never granted", async () => {
      const factory = limiterOf([{ kind: "concurrency", name: "c", limit: 2, leaseTtl: "1h" }]);
      const model = new Model(store);
      const r = await model.apply(
        factory.build(factory.plan.resolve("k"), { op: "renew", leaseId: "ghost" }),
        "renew ghost",
      );
      expect(r[0]).toBe(0);
      expect(r[2]).toBe(0);
    });

    it("keeps concurrent decisions on different keys apart", async () => {
      const factory = limiterOf([{ kind: "fixedWindow", name: "w", limit: 3, window: "1h" }]);
      const keys = ["a", "a:b", "a%3Ab", "{a}", "用户"].map((k) => factory.plan.resolve(k));
      const results = await Promise.all(
        keys.flatMap((key) =>
          Array.from({ length: 5 }, () =>
            store.execute(factory.build(key, { op: "take", cost: 1 })),
          ),
        ),
      );
      for (let k = 0; k < keys.length; k++) {
        expect(results.slice(k * 5, k * 5 + 5).filter((r) => r[0] === 1)).toHaveLength(3);
      }
    });
  });
}
