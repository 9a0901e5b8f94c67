import { createLimiter, type Key, type Lease, type Policy } from "@sluice/core";
import { compilePolicies, type Store } from "@sluice/core/store";
import { type MemoryStore, memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const POLICIES: readonly Policy[] = [
  { kind: "tokenBucket", name: "burst", capacity: 3, refill: { tokens: 1, every: "100ms" } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 2, every: "300ms" } },
  { kind: "fixedWindow", name: "second", limit: 5, window: "1s" },
  { kind: "fixedWindow", name: "first-use", limit: 4, window: "500ms", align: "firstUse" },
  { kind: "slidingWindow", name: "sliding", limit: 4, window: "1s", precision: "100ms" },
  { kind: "concurrency", name: "slots", limit: 2, leaseTtl: "400ms" },
  { kind: "fixedWindow", name: "ny-day", limit: 6, window: "1d", timeZone: "America/New_York" },
];
const KEYS: readonly Key[] = ["a", "b", { id: "a" }, { tenant: "t", user: "u" }];

type Command =
  | { op: "take"; key: number; cost: number }
  | { op: "peek"; key: number }
  | { op: "refund"; key: number; cost: number }
  | { op: "reconcile"; key: number; policy: number; remaining?: number; limit?: number }
  | { op: "reset"; key: number }
  | { op: "acquire"; key: number }
  | { op: "release"; lease: number }
  | { op: "pass"; ms: number };

const key = fc.nat({ max: KEYS.length - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("take" as const), key, cost: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("peek" as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("refund" as const), key, cost: fc.nat(2) }) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        op: fc.constant("reconcile" as const),
        key,
        policy: fc.nat(POLICIES.length - 1),
        remaining: fc.nat(4),
        limit: fc.integer({ min: 1, max: 8 }),
      },
      { requiredKeys: ["op", "key", "policy"] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const), key }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("acquire" as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("release" as const), lease: fc.nat(5) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("pass" as const),
      ms: fc.oneof(fc.nat(700), fc.constant(6 * 3_600_000)),
    }),
  },
);

/** The same store seen without `decideNow`: every take goes through `execute`. */
function withoutFastPath(inner: MemoryStore): Store {
  return { capabilities: inner.capabilities, execute: (request) => inner.execute(request) };
}

describe("the in-process fast path", () => {
  it("decides every take and peek as execute() does, whatever happened to the key before", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([...POLICIES], { minLength: 1 }),
        fc.constantFrom(Number.POSITIVE_INFINITY, 2, 5),
        fc.array(command, { minLength: 1, maxLength: 80 }),
        async (policies, maxKeys, commands) => {
          let now = Date.UTC(2026, 0, 5, 12);
          const clock = () => now;
          const fast = memoryStore({ clock, maxKeys });
          const slow = memoryStore({ clock, maxKeys });
          const limiters = [
            createLimiter({ store: fast, policies, learnedLimitTtlMs: 900 }),
            createLimiter({ store: withoutFastPath(slow), policies, learnedLimitTtlMs: 900 }),
          ] as const;
          const leases: [Lease, Lease][] = [];
          for (const c of commands) {
            if (c.op === "pass") {
              now += c.ms;
              continue;
            }
            if (c.op === "release") {
              const pair = leases.splice(c.lease, 1)[0];
              if (pair !== undefined) await Promise.all(pair.map((l) => l.release()));
              continue;
            }
            const k = KEYS[c.key]!;
            const [a, b] = await Promise.all(
              limiters.map(async (l) => {
                switch (c.op) {
                  case "take":
                    return l.take(k, { cost: c.cost });
                  case "peek":
                    return l.peek(k);
                  case "refund":
                    return l.refund(k, { cost: c.cost });
                  case "reconcile":
                    return l.reconcile(k, {
                      policy: policies[c.policy % policies.length]!.name,
                      ...(c.remaining === undefined ? {} : { remaining: c.remaining }),
                      ...(c.limit === undefined ? {} : { limit: c.limit }),
                    });
                  case "reset":
                    return l.reset(k);
                  case "acquire":
                    return l.tryAcquire(k);
                }
              }),
            );
            if (c.op === "acquire") {
              const [x, y] = [a, b] as { decision: unknown; lease: Lease | null }[];
              expect(x!.decision).toEqual(y!.decision);
              if (x!.lease !== null && y!.lease !== null) leases.push([x!.lease, y!.lease]);
            } else expect(a, `${c.op} at ${now}`).toEqual(b);
          }
          expect(fast.size).toBe(slow.size);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers a cached key again after its state was dropped, swept or evicted", async () => {
    let now = 0;
    const store = memoryStore({ clock: () => now, maxKeys: 2 });
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "second", limit: 3, window: "1s" }],
    });
    expect((await limiter.take("a")).remaining).toBe(2);
    await limiter.take("b");
    await limiter.take("c"); // evicts "a"
    expect((await limiter.take("a")).remaining).toBe(2);
    await limiter.reset("a");
    expect((await limiter.take("a")).remaining).toBe(2);
    now += 1_000; // the window ended: the state is back to default
    expect((await limiter.take("a", { cost: 3 })).remaining).toBe(0);
    await store.close();
    expect((await limiter.take("a")).remaining).toBe(2);
  });

  it("refuses what is not a plain take or peek", () => {
    const store = memoryStore();
    const request = {
      op: "take" as const,
      policies: compilePolicies([POLICIES[0]!]),
      keys: ["k"],
      partition: "k",
      cost: 1,
      acquire: true,
      leaseId: "lease",
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: 1_000,
      windowBounds: undefined,
    };
    expect(() => store.decideNow(request, [])).toThrow(/without a lease/);
    expect(() => store.decideNow({ ...request, op: "refund", acquire: false }, [])).toThrow(
      /refund/,
    );
    expect(store.size).toBe(0);
  });
});
