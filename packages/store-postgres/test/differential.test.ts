import type { Policy } from "@sluice/core";
import {
  compilePolicies,
  type StoreObservation,
  type StoreOp,
  type StoreRequest,
} from "@sluice/core/store";
import { compareWithReference, ReferenceModel, type TimeDriver } from "@sluice/core/testing";
import { describe, expect, it } from "vitest";
import { migratedStore, runPostgres, serverNowMs, testClockStore, uniqueTable } from "./helpers.js";

const TABLE = uniqueTable("sluice_test_differential");
const CLOCKED_TABLE = uniqueTable("sluice_test_differential_clocked");

// The store's own layouts for the core comparison harness (compareWithReference), besides the
// ones it generates. Short durations so time moves state through refills, window ends and lease
// expiry.
const ALL: Policy[] = [
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 2, every: 7 } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: 9 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: 20 },
  { kind: "fixedWindow", name: "fu", limit: 3, window: 15, align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 5, window: 24, precision: 5 },
  { kind: "concurrency", name: "conc", limit: 2, leaseTtl: 25 },
];
// The kinds most limiters use: token buckets, pools and fixed windows.
const SIMPLE: Policy[] = ALL.slice(0, 4);
const zoned = compilePolicies([
  { kind: "fixedWindow", name: "day", limit: 3, window: "1d", timeZone: "Europe/London" },
]);

/** A request on `keys` of compiled `policies` (for the store-specific cases below). */
function request(
  policies: StoreRequest["policies"],
  keys: readonly string[],
  op: StoreOp,
  fields: Partial<StoreRequest> = {},
): StoreRequest {
  return {
    op,
    policies,
    keys,
    partition: "p",
    cost: op === "take" ? 1 : 0,
    acquire: false,
    leaseId: undefined,
    leaseTtlMs: undefined,
    observations: undefined,
    learnedLimitTtlMs: 30,
    windowBounds: undefined,
    ...fields,
  };
}

describe.runIf(runPostgres)("postgres store agrees with evaluate()", () => {
  const db = migratedStore(TABLE);

  // Real sleeps between steps: a busy machine stretches 60 runs well past the default timeout.
  it("returns the reference result for every op of random sequences, at the server's clock", {
    timeout: 120_000,
  }, async () => {
    await compareWithReference({
      store: db.store,
      limiters: [ALL],
      maxPassMs: 11,
      numRuns: 60,
      maxCommands: 40,
    });
  });

  it("windows a zoned fixed window from the bounds the engine passes", async () => {
    // Bounds are around the store's clock.
    const now = await serverNowMs(db.pool);
    const bounds = [now - 50_000, now - 10, now + 60_000, now + 120_000];
    const keys = [`t:{z${process.pid}}:day:id=z`];
    const model = new ReferenceModel();
    const windowBounds = [bounds];
    for (let i = 0; i < 5; i++) {
      await model.apply(db.store, request(zoned, keys, "take", { windowBounds }));
    }
    const last = await db.store.execute(request(zoned, keys, "peek", { windowBounds }));
    expect(last[4 + 2]).toBe(now + 60_000);
  });
});

// The same function with "now" set by the test (@sluice/store-postgres/testing): deterministic,
// so the properties can run many sequences and reach exact boundaries (a refill step, a window
// end, a learned limit's lapse, a state's due time) that real sleeps hit only by chance.
// Hundreds of sequences each: a busy machine can stretch a property past the default timeout.
describe.runIf(runPostgres)("postgres store agrees with evaluate() at a test clock", () => {
  const db = testClockStore(CLOCKED_TABLE);
  let now = 1_000_000;
  // At a test clock time costs nothing: any gap, including exactly a refill step or window.
  const time: TimeDriver = {
    now: () => now,
    pass: async (ms) => {
      now += ms;
      await db.setNow(now);
    },
  };
  const compare = (limiters: Policy[][], numRuns: number, concurrent = false) =>
    time.pass(0).then(() =>
      compareWithReference({
        store: db.store,
        time,
        limiters,
        maxPassMs: 45,
        numRuns,
        maxCommands: 30,
        concurrent,
      }),
    );

  // Every kind together, the common kinds together, and each kind alone (one policy: the
  // function's single-policy shortcut between its two passes).
  it(
    "returns the reference result for every op of random sequences",
    {
      timeout: 300_000,
    },
    () => compare([ALL, SIMPLE, ...ALL.map((p) => [p])], 1000),
  );

  it(
    "agrees on limiters of token buckets, pools and fixed windows",
    {
      timeout: 120_000,
    },
    () => compare([SIMPLE, ...SIMPLE.map((p) => [p])], 600),
  );

  // Found by the property above (and, once in CI, by the real clock): the function deleted a pool's
  // row at the lapse plus a refill from its anchor, while evaluate() keeps state for a learned
  // limit until the lapse plus a full refill at capacity; a later, higher learned limit then saw
  // a full pool instead of the refilling one.
  it("keeps a pool's state past a lower learned limit's lapse, as evaluate() does", async () => {
    const pool = compilePolicies([SIMPLE[1]!]);
    const keys = [`t:{lapse${process.pid}}:pool:id=1`];
    const model = new ReferenceModel();
    const reconcile = (observation: StoreObservation) =>
      request(pool, keys, "reconcile", { observations: [observation] });
    await time.pass(0);
    await model.apply(
      db.store,
      reconcile({ remaining: 0, limit: 1, resetAtMs: now + 17 }),
      "reconcile",
    );
    await time.pass(10);
    await model.apply(db.store, request(pool, keys, "take", { cost: 0 }), "take");
    await time.pass(35);
    await model.apply(
      db.store,
      reconcile({ remaining: undefined, limit: 5, resetAtMs: undefined }),
      "reconcile",
    );
  });

  // Issued together: the store coalesces them into shared batches, run in issue order per key.
  it(
    "agrees when requests on the same keys share one batch, in issue order",
    {
      timeout: 120_000,
    },
    () => compare([SIMPLE, ALL, [SIMPLE[0]!], [SIMPLE[2]!]], 200, true),
  );
});
