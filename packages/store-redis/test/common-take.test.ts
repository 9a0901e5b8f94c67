import type { Policy } from "@sluice/core";
import {
  type CompiledPolicy,
  compilePolicies,
  RESULT_HEADER,
  type StoreRequest,
} from "@sluice/core/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keysFor, Model, redisReachable, request } from "./helpers.js";
import { useTestClockStore } from "./test-clock.js";

const reachable = await redisReachable();

// Layouts the script's common-take path serves (one scope key, no concurrency policy), with
// limits low enough that refusals, and high enough that long admitted runs, both happen.
const LAYOUTS: readonly (readonly CompiledPolicy[])[] = [
  compilePolicies([
    { kind: "tokenBucket", name: "tb", capacity: 30, refill: { tokens: 2, every: 7 } },
    { kind: "fixedWindow", name: "fw", limit: 40, window: 300 },
    { kind: "slidingWindow", name: "sw", limit: 50, window: 400, precision: 10 },
    { kind: "pool", name: "pool", capacity: 60, refill: { tokens: 5, every: 50 } },
  ]),
  compilePolicies([
    { kind: "slidingWindow", name: "sw", limit: 500, window: 1_000, precision: 5 },
    { kind: "fixedWindow", name: "first", limit: 400, window: 250, align: "firstUse" },
  ]),
  compilePolicies([
    { kind: "slidingWindow", name: "a", limit: 20, window: 100, precision: 10 },
    { kind: "slidingWindow", name: "b", limit: 300, window: 2_000, precision: 20 },
  ]),
];

const step = fc.record({
  // Mostly small steps (many decisions per slot), sometimes a jump past windows.
  advance: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 12 }) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 2_500 }) },
  ),
  op: fc.constantFrom("take", "take", "take", "take", "take", "peek", "refund"),
  cost: fc.constantFrom(0, 1, 1, 1, 2, 3, 8),
});

/** A token bucket or pool of a random layout: capacity up to `most`, refills of up to `tokens`. */
const refilling = (kind: "tokenBucket" | "pool", most: number, tokens: number, every: number[]) =>
  fc.record({
    kind: fc.constant(kind),
    capacity: fc.integer({ min: 1, max: most }),
    refill: fc.record({
      tokens: fc.integer({ min: 1, max: tokens }),
      every: fc.integer({ min: every[0]!, max: every[1]! }),
    }),
  });

/** One policy of a random layout: its kind, with small limits, short windows and refills. */
const randomPolicy = fc.oneof(
  refilling("tokenBucket", 40, 4, [1, 60]),
  refilling("pool", 60, 6, [5, 90]),
  fc.record({
    kind: fc.constant("fixedWindow" as const),
    limit: fc.integer({ min: 1, max: 50 }),
    window: fc.integer({ min: 20, max: 400 }),
    align: fc.constantFrom("calendar" as const, "firstUse" as const),
  }),
  fc.record({
    kind: fc.constant("slidingWindow" as const),
    limit: fc.integer({ min: 1, max: 60 }),
    window: fc.integer({ min: 40, max: 600 }),
    precision: fc.integer({ min: 2, max: 20 }),
  }),
);

/** Runs `steps` on a fresh key of `policies` and checks every answer against evaluate(). */
async function agrees(
  clock: ReturnType<typeof useTestClockStore>,
  policies: readonly CompiledPolicy[],
  tag: string,
  steps: readonly { advance: number; op: "take" | "peek" | "refund"; cost: number }[],
): Promise<void> {
  const keys = keysFor(policies, tag);
  const model = new Model();
  for (const s of steps) {
    clock.now += s.advance;
    const req: StoreRequest = request(policies, keys, s.op, {
      cost: s.op === "peek" ? 0 : s.cost,
    });
    const actual = [...(await clock.store.execute(req))];
    expect(actual).toEqual(model.check(req, actual));
  }
}

// The common take runs in decide.lua's loop (specializedScripts: 0) or in code written out for
// the layout's kinds (fast-take.ts): both must answer as evaluate() does. The first form gets a
// cap no run reaches, so that every layout of every test here has its own script.
describe.skipIf(!reachable && !process.env.CI).each([
  { form: "written out for its kinds", specializedScripts: 100_000 },
  { form: "decide.lua's loop", specializedScripts: 0 },
])("redis store: the common take, $form", ({ specializedScripts }) => {
  const clock = useTestClockStore(undefined, { specializedScripts });

  it("answers and stores what evaluate() does, through long runs of takes", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: LAYOUTS.length - 1 }),
        fc.array(step, { minLength: 20, maxLength: 160 }),
        (layout, steps) => agrees(clock, LAYOUTS[layout]!, `common-${run++}`, steps),
      ),
      { numRuns: process.env.CI ? 60 : 30 },
    );
  });

  it("answers as evaluate() does for any sequence of up to 6 kinds", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(randomPolicy, { minLength: 1, maxLength: 6 }),
        fc.array(step, { minLength: 10, maxLength: 80 }),
        (configs, steps) => {
          // Names of different lengths, so that the entries' heads differ in size.
          const policies = compilePolicies(
            configs.map((c, i) => ({ ...c, name: `p${"x".repeat(i * 3)}${i}` }) as Policy),
          );
          return agrees(clock, policies, `kinds-${run++}`, steps);
        },
      ),
      { numRuns: process.env.CI ? 80 : 40 },
    );
  });

  it("drops a sliding window's slots at the very millisecond its entry falls due", async () => {
    // The entry's due is the end of its latest slot plus the window: a take at that instant
    // reads the entry as live, with every slot expired (one slot, then several).
    const policies = compilePolicies([
      { kind: "tokenBucket", name: "tb", capacity: 100, refill: { tokens: 1, every: 1 } },
      { kind: "slidingWindow", name: "sw", limit: 10, window: 100, precision: 10 },
    ]);
    for (const [tag, takes] of [
      ["one-slot", 1],
      ["three-slots", 3],
    ] as const) {
      const start = Math.ceil(clock.now / 10) * 10 + 10;
      const steps = [];
      for (let k = 0; k < takes; k++) {
        steps.push({ advance: k === 0 ? start - clock.now : 10, op: "take" as const, cost: 3 });
      }
      // The latest slot began at start + 10 (takes - 1); its entry is due 10 + 100 ms later.
      steps.push({ advance: 110, op: "take" as const, cost: 2 });
      steps.push({ advance: 0, op: "take" as const, cost: 1 });
      await agrees(clock, policies, `due-${tag}`, steps);
    }
  });

  it("keeps the entries of another limiter sharing the scope key", async () => {
    // Two limiters, one key: each one's entries live in the same Redis string.
    const a = compilePolicies([
      { kind: "tokenBucket", name: "a", capacity: 10, refill: { tokens: 1, every: 1_000 } },
    ]);
    const b = compilePolicies([{ kind: "fixedWindow", name: "b", limit: 10, window: 60_000 }]);
    const keysA = keysFor(a, "shared");
    const keysB = keysFor(b, "shared");
    const model = new Model();
    const run = async (
      policies: readonly CompiledPolicy[],
      keys: readonly string[],
      op: "take" | "peek",
    ) => {
      const req = request(policies, keys, op);
      const actual = [...(await clock.store.execute(req))];
      expect(actual).toEqual(model.check(req, actual));
      return actual;
    };
    await run(b, keysB, "take");
    for (let i = 0; i < 3; i++) {
      clock.now += 1;
      await run(a, keysA, "take");
    }
    const peek = await run(b, keysB, "peek");
    // b's window: 1 of 10 taken, kept through a's three rewrites.
    expect(peek[RESULT_HEADER + 1]).toBe(9);
  });
});
