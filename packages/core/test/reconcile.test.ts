import type { Policy } from "@sluice/core";
import {
  compilePolicies,
  evaluate,
  type PolicyStateRecord,
  readAnswer,
  type StoreObservation,
  type StoreRequest,
} from "@sluice/core/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const ratePolicies: Policy[] = [
  { kind: "tokenBucket", name: "b", capacity: 6, refill: { tokens: 1, every: 50 } },
  { kind: "pool", name: "p", capacity: 6, refill: { tokens: 2, every: 70 } },
  { kind: "fixedWindow", name: "f", limit: 6, window: 200 },
  { kind: "fixedWindow", name: "u", limit: 6, window: 200, align: "firstUse" },
  { kind: "slidingWindow", name: "s", limit: 6, window: 200, precision: 20 },
];

function request(
  policy: Policy,
  op: StoreRequest["op"],
  cost: number,
  obs?: StoreObservation,
): StoreRequest {
  return {
    op,
    policies: compilePolicies([policy]),
    keys: ["k"],
    partition: "k",
    cost,
    acquire: false,
    leaseId: undefined,
    leaseTtlMs: undefined,
    observations: obs === undefined ? undefined : [obs],
    learnedLimitTtlMs: 1_000,
    windowBounds: undefined,
  };
}

const remainingOf = (r: readonly number[]) => readAnswer(r, 1).remaining(0);
const limitOf = (r: readonly number[]) => readAnswer(r, 1).limit(0);

describe("reconcile", () => {
  it("lowers remaining to the server's, never raises it, for every rate kind", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ratePolicies),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 1, max: 4 })), {
          maxLength: 12,
        }),
        fc.integer({ min: 0, max: 9 }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        (policy, takes, serverRemaining, resetInMs) => {
          let state: PolicyStateRecord | undefined;
          let now = 10_000;
          for (const [gap, cost] of takes) {
            now += gap;
            const e = evaluate(request(policy, "take", cost), [state], now);
            if (e.write) state = e.states[0];
          }
          const before = remainingOf(evaluate(request(policy, "peek", 0), [state], now).result);
          const obs: StoreObservation = {
            remaining: serverRemaining,
            limit: undefined,
            resetAtMs: resetInMs === undefined ? undefined : now + resetInMs,
          };
          const after = evaluate(request(policy, "reconcile", 0, obs), [state], now).result;
          expect(remainingOf(after)).toBe(Math.min(before, serverRemaining));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("refills a token bucket from a server's reset already past, as from one to come", () => {
    const policy = ratePolicies[0]!; // 6 tokens, one per 50 ms
    const taken = evaluate(request(policy, "take", 1), [undefined], 10_000).states[0];
    const reconciled = (resetAtMs: number) =>
      evaluate(
        request(policy, "reconcile", 0, { remaining: 0, limit: undefined, resetAtMs }),
        [taken],
        10_000,
      );
    // Empty as of 20 ms ago and refilling since: the first token is back 30 ms from now.
    const state = reconciled(9_980).states[0];
    const remainingAt = (ms: number) =>
      remainingOf(evaluate(request(policy, "peek", 0), [state], ms).result);
    expect(remainingAt(10_029)).toBe(0);
    expect(remainingAt(10_030)).toBe(1);
    // Empty as of 300 ms ago: full again since, so the bucket keeps what it holds.
    expect(remainingOf(reconciled(9_700).result)).toBe(5);
  });

  it("lets a learned limit win, up or down, until it lapses", () => {
    for (const policy of ratePolicies) {
      for (const learned of [2, 9]) {
        const obs = { remaining: undefined, limit: learned, resetAtMs: undefined };
        const e = evaluate(request(policy, "reconcile", 0, obs), [undefined], 0);
        const state = e.states[0];
        expect(limitOf(e.result)).toBe(learned);
        const during = evaluate(request(policy, "peek", 0), [state], 999).result;
        expect(limitOf(during)).toBe(learned);
        const lapsed = evaluate(request(policy, "peek", 0), [state], 1_000).result;
        expect(limitOf(lapsed)).toBe(6);
      }
    }
  });

  it("answers a raised limit the same whether or not a peek advanced the state in place", () => {
    for (const policy of ratePolicies) {
      const taken = evaluate(request(policy, "take", 6), [undefined], 0).states[0];
      const copy = structuredClone(taken);
      // The memory store reuses its objects; a peek long after is never written back.
      evaluate(request(policy, "peek", 0), [taken], 5_000, true);
      const raise = request(policy, "reconcile", 0, {
        remaining: undefined,
        limit: 9,
        resetAtMs: undefined,
      });
      const reused = evaluate(raise, [taken], 5_000).result;
      const untouched = evaluate(raise, [copy], 5_000).result;
      expect(reused).toEqual(untouched);
    }
  });

  it("refuses a cost above the limit with retry -1 for every rate kind, charging nothing", () => {
    for (const policy of ratePolicies) {
      const e = evaluate(request(policy, "take", 7), [undefined], 0);
      expect(e.result[0]).toBe(0);
      expect(readAnswer(e.result, 1).retryAfterMs(0)).toBe(-1);
      expect(readAnswer(e.result, 1).blocked(0)).toBe(true);
      expect(e.write).toBe(false);
      expect(remainingOf(e.result)).toBe(6);
    }
  });
});
