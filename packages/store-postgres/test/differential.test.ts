import {
  compilePolicies,
  evaluate,
  type PolicyStateRecord,
  type StoreObservation,
  type StoreOp,
  type StoreRequest,
} from "@sluice/core";
import fc from "fast-check";
import type pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../src/index.js";
import { migratedStore, runPostgres } from "./helpers.js";

const TABLE = "sluice_test_differential";

// Short durations so real server time moves state through refills, window ends and lease expiry.
const policies = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 2, every: 7 } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: 9 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: 20 },
  { kind: "fixedWindow", name: "fu", limit: 3, window: 15, align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 5, window: 24, precision: 5 },
  { kind: "concurrency", name: "conc", limit: 2, leaseTtl: 25 },
]);
// Only the kinds the function's fast path takes (plain takes of token buckets, pools and fixed
// windows); reconcile's learned limits send takes back to the general path.
const simple = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 2, every: 7 } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: 9 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: 20 },
  { kind: "fixedWindow", name: "fu", limit: 3, window: 15, align: "firstUse" },
]);
const zoned = compilePolicies([
  { kind: "fixedWindow", name: "day", limit: 3, window: "1d", timeZone: "Europe/London" },
]);

type Step = {
  op: StoreOp;
  acquire: boolean;
  cost: number;
  lease: number;
  ttl: number | undefined;
  obs: (StoreObservation | undefined)[] | undefined;
  sleep: number;
};

const obsArb = fc.option(
  fc.record({
    remaining: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
    limit: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
    resetAtOffset: fc.option(fc.integer({ min: -5, max: 40 }), { nil: undefined }),
  }),
  { nil: undefined },
);

const stepArb: fc.Arbitrary<Step> = fc.record({
  op: fc.constantFrom<StoreOp>(
    "take",
    "take",
    "take",
    "peek",
    "refund",
    "reconcile",
    "release",
    "renew",
    "reset",
  ),
  acquire: fc.boolean(),
  cost: fc.integer({ min: 0, max: 7 }),
  lease: fc.integer({ min: 0, max: 3 }),
  ttl: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
  obs: fc.option(fc.array(obsArb, { minLength: 6, maxLength: 6 }), { nil: undefined }),
  sleep: fc.constantFrom(0, 0, 0, 2, 5, 11),
}) as unknown as fc.Arbitrary<Step>;

function request(
  pols: typeof policies,
  keys: readonly string[],
  step: Step,
  bounds?: readonly number[],
): StoreRequest {
  const leaseId = step.op === "take" && !step.acquire ? undefined : `lease-${step.lease}`;
  return {
    op: step.op,
    policies: pols,
    keys,
    partition: "p",
    cost: step.op === "take" || step.op === "refund" ? step.cost : 0,
    acquire: step.op === "take" && step.acquire,
    leaseId,
    leaseTtlMs: step.op === "renew" ? step.ttl : undefined,
    observations:
      step.op === "reconcile"
        ? pols.map((_, i) => {
            const o = step.obs?.[i] as
              | { remaining?: number; limit?: number; resetAtOffset?: number }
              | undefined;
            if (o === undefined) return undefined;
            return {
              remaining: o.remaining,
              limit: o.limit,
              // Offsets from "about now": resolved against the wall clock, close to the server's.
              resetAtMs: o.resetAtOffset === undefined ? undefined : Date.now() + o.resetAtOffset,
            };
          })
        : undefined,
    learnedLimitTtlMs: 30,
    windowBounds: bounds === undefined ? undefined : pols.map(() => bounds),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Checks a store answer against evaluate() at the server's clock, then moves the model on. */
function agrees(
  req: StoreRequest,
  got: readonly number[],
  keys: readonly string[],
  model: Map<string, PolicyStateRecord>,
): void {
  const want = evaluate(
    req,
    keys.map((k) => model.get(k)),
    got[1]!,
  );
  expect(got).toEqual(want.result);
  if (!want.write) return;
  keys.forEach((k, i) => {
    const s = want.states[i];
    if (s === undefined) model.delete(k);
    else model.set(k, s);
  });
}

describe.runIf(runPostgres)("postgres store agrees with evaluate()", () => {
  let _pool: pg.Pool;
  let store: PostgresStore;
  let run = 0;

  const db = migratedStore(TABLE);
  beforeAll(() => {
    _pool = db.pool;
    store = db.store;
  });

  // Real sleeps between steps: a busy machine stretches 60 runs well past the default timeout.
  it("returns the reference result for every op of random sequences, at the server's clock", {
    timeout: 120_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 5, maxLength: 40 }), (steps) =>
        agreesSequentially(policies, steps),
      ),
      { numRuns: 60 },
    );
  });

  // Sequential: every request is a batch of one.
  async function agreesSequentially(pols: typeof policies, steps: Step[]): Promise<void> {
    run++;
    const keys = pols.map((p) => `t:{r${run}}:${p.name}:id=r${run}`);
    const model = new Map<string, PolicyStateRecord>();
    for (const step of steps) {
      if (step.sleep > 0) await sleep(step.sleep);
      const req = request(pols, keys, step);
      agrees(req, await store.execute(req), keys, model);
    }
  }

  it("agrees on limiters the fast path takes (token buckets, pools, fixed windows)", async () => {
    // All four together, and each alone (one policy: the fast path's single-policy shortcut).
    const limiters = [simple, ...simple.map((p) => [p])];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...limiters),
        fc.array(stepArb, { minLength: 5, maxLength: 40 }),
        (pols, steps) => agreesSequentially(pols, steps),
      ),
      { numRuns: 80 },
    );
  });

  it("agrees when requests on the same keys share one batch, in issue order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(simple, policies, [simple[0]!], [simple[2]!]),
        fc.array(fc.array(stepArb, { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 8 }),
        async (pols, groups) => {
          run++;
          const keys = pols.map((p) => `t:{r${run}}:${p.name}:id=r${run}`);
          const model = new Map<string, PolicyStateRecord>();
          for (const group of groups) {
            if (group[0]!.sleep > 0) await sleep(group[0]!.sleep);
            // Issued together: one partition, one lane, so they run in this order (the first
            // alone when the lane is idle, the rest as one batch behind it).
            const reqs = group.map((step) => request(pols, keys, step));
            const results = await Promise.all(reqs.map((r) => store.execute(r)));
            reqs.forEach((req, i) => {
              agrees(req, results[i]!, keys, model);
            });
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("windows a zoned fixed window from the bounds the engine passes", async () => {
    const now = Date.now();
    const bounds = [now - 50_000, now - 10, now + 60_000, now + 120_000];
    const keys = ["t:{z}:day:id=z"];
    const model = new Map<string, PolicyStateRecord>();
    for (let i = 0; i < 5; i++) {
      const step: Step = {
        op: "take",
        acquire: false,
        cost: 1,
        lease: 0,
        ttl: undefined,
        obs: undefined,
        sleep: 0,
      };
      const req = request(zoned, keys, step, bounds);
      const got = await store.execute(req);
      const want = evaluate(
        req,
        keys.map((k) => model.get(k)),
        got[1]!,
      );
      expect(got).toEqual(want.result);
      if (want.write) {
        const s = want.states[0];
        if (s === undefined) model.delete(keys[0]!);
        else model.set(keys[0]!, s);
      }
    }
    const last = await store.execute(request(zoned, keys, { op: "peek" } as Step, bounds));
    expect(last[4 + 2]).toBe(now + 60_000);
  });
});
