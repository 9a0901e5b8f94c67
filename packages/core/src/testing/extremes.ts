import fc from "fast-check";
import { expect } from "vitest";
import { createLimiter } from "../limiter/index.js";
import { compilePolicies } from "../policy/compile.js";
import { MAX_REFILL } from "../policy/refill-bounds.js";
import type { Policy, PolicyKind } from "../policy/schema.js";
import type { Store } from "../store/contract.js";
import { largestLimit } from "../store/observation-bounds.js";
import { type Command, keysArb, type ObservationSpec, type Scenario } from "./scenario.js";

/**
 * Scenarios at the largest values the policy schema accepts: capacities and limits up to 2^53 - 1
 * (a bucket's token-milliseconds and a pool's refill from empty up to 2^52), periods and windows
 * up to 100 years, costs and refunds around 2^31, 2^52 and 2^53, server reports as large as the
 * engine passes them on, and time passing by up to a century. Every store must still answer exactly as `evaluate()`.
 */

const MAX = Number.MAX_SAFE_INTEGER;
const CENTURY_MS = 100 * 365.25 * 86_400_000;
const DAY_MS = 86_400_000;

/** Periods and windows: the shortest, odd ones, a day, and the longest a duration may be. */
const periodArb = fc.oneof(
  fc.constantFrom(1, 7, 1_000, DAY_MS, CENTURY_MS),
  fc.integer({ min: 1, max: CENTURY_MS }),
);

/** Whole numbers in [1, max], mostly at the edges that round in doubles or overflow in SQL. */
function sizeArb(max: number): fc.Arbitrary<number> {
  const edges = [1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 52 - 1, 2 ** 52, 2 ** 52 + 1, MAX];
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.constantFrom(...edges.filter((n) => n <= max), max, max - 1) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: Math.min(max, 9) }) },
    )
    .filter((n) => n >= 1 && n <= max);
}

/** Costs and counts in [0, MAX], with the same edges. */
const amountArb = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 7 }) },
  { weight: 3, arbitrary: sizeArb(MAX) },
);

function policyArb(name: string, kinds: readonly PolicyKind[]): fc.Arbitrary<Policy> {
  const all: [PolicyKind, fc.Arbitrary<Policy>][] = [
    [
      "tokenBucket",
      fc.record({ every: periodArb, tokens: sizeArb(MAX) }).chain(({ every, tokens }) =>
        sizeArb(Math.max(1, Math.floor(MAX_REFILL / every))).map(
          (capacity): Policy => ({
            kind: "tokenBucket",
            name,
            capacity,
            refill: { tokens, every },
          }),
        ),
      ),
    ],
    [
      "pool",
      fc.record({ every: periodArb, tokens: sizeArb(MAX) }).chain(({ every, tokens }) =>
        sizeArb(Math.min(MAX, Math.max(1, Math.floor(MAX_REFILL / every)) * tokens))
          .filter((capacity) => Math.ceil(capacity / tokens) * every <= MAX_REFILL)
          .map((capacity): Policy => ({ kind: "pool", name, capacity, refill: { tokens, every } })),
      ),
    ],
    [
      "fixedWindow",
      fc.record({
        kind: fc.constant("fixedWindow" as const),
        name: fc.constant(name),
        limit: sizeArb(MAX),
        window: periodArb,
        align: fc.constantFrom("calendar" as const, "firstUse" as const),
      }),
    ],
    [
      "slidingWindow",
      fc
        .record({ limit: sizeArb(MAX), window: periodArb, slots: fc.integer({ min: 1, max: 60 }) })
        .map(
          ({ limit, window, slots }): Policy => ({
            kind: "slidingWindow",
            name,
            limit,
            window,
            precision: Math.max(1, Math.floor(window / slots)),
          }),
        ),
    ],
    [
      "concurrency",
      fc.record({
        kind: fc.constant("concurrency" as const),
        name: fc.constant(name),
        limit: sizeArb(MAX),
        leaseTtl: periodArb,
      }),
    ],
  ];
  return fc.oneof(...all.filter(([k]) => kinds.includes(k)).map(([, arb]) => arb));
}

/**
 * What a server may report about `p`, as the engine hands it to stores (`boundObservation`):
 * remaining up to 2^53 - 1, a limit up to the largest the policy may be held to.
 */
function observationArb(p: Policy): fc.Arbitrary<ObservationSpec | null> {
  const largest = largestLimit(compilePolicies([p])[0]!);
  return fc.option(
    fc.record({
      remaining: fc.option(amountArb),
      limit: fc.option(sizeArb(largest)),
      resetInMs: fc.option(fc.oneof(fc.integer({ min: -20, max: 300 }), periodArb)),
    }),
    { freq: 2 },
  );
}

function commandArb(policies: readonly Policy[]): fc.Arbitrary<Command> {
  const key = fc.integer({ min: 0, max: 3 });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant("take" as const), key, cost: amountArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("peek" as const), key }) },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant("refund" as const), key, cost: amountArb }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("reconcile" as const),
        key,
        obs: fc.tuple(...policies.map(observationArb)),
        learnedTtlMs: fc.option(periodArb, { freq: 2 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("acquire" as const), key }) },
    {
      weight: 1,
      arbitrary: fc.record({ t: fc.constant("release" as const), key, lease: fc.nat(4) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant("renew" as const),
        key,
        lease: fc.nat(4),
        ttlMs: fc.option(periodArb),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("reset" as const), key }) },
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant("pass" as const),
        ms: fc.oneof(fc.integer({ min: 0, max: 50 }), periodArb),
      }),
    },
  );
}

const ALL_KINDS: readonly PolicyKind[] = [
  "tokenBucket",
  "pool",
  "fixedWindow",
  "slidingWindow",
  "concurrency",
];

/** Extreme scenarios: string keys, one to three generated policies of `kinds`. */
export function extremeScenarioArb(
  kinds: readonly PolicyKind[] = ALL_KINDS,
  maxCommands = 30,
): fc.Arbitrary<Scenario> {
  return fc
    .integer({ min: 1, max: 3 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policyArb(`p${i}`, kinds))))
    .chain((policies) =>
      fc.record({
        keyMode: fc.constant("string" as const),
        keys: keysArb("string"),
        policies: fc.constant(policies as Policy[]),
        commands: fc.array(commandArb(policies), { minLength: 1, maxLength: maxCommands }),
        leadMs: fc.constant(0),
      }),
    );
}

/**
 * Checks that `store` takes a server's report of any size (limit, remaining and reset of 1e300)
 * through `reconcile`, held to what each policy may be: a bucket's and a pool's limit to what their
 * refill allows within 2^52, a window's to 2^53 - 1. Call it from a vitest test; the store's clock
 * must be near `Date.now()` (the engine's requests carry deadlines on the client's clock).
 *
 * @param store - the store under test.
 */
export async function expectReportsOfAnySizeBounded(store: Store): Promise<void> {
  const limiter = createLimiter({
    store,
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
}
