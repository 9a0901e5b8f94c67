import * as core from "@sluice/core";
import * as store from "@sluice/core/store";
import {
  answerLength,
  compilePolicies,
  evaluate,
  policyAnswer,
  readAnswer,
  type StoreRequest,
} from "@sluice/core/store";
import { describe, expect, it } from "vitest";

const policies = compilePolicies([
  { kind: "fixedWindow", name: "w", limit: 3, window: "1h" },
  { kind: "pool", name: "p", capacity: 2, refill: { tokens: 1, every: "1m" } },
  { kind: "concurrency", name: "c", limit: 1, leaseTtl: "30s" },
]);

const take = (cost: number): StoreRequest => ({
  op: "take",
  policies,
  keys: ["w", "p", "c"],
  partition: "",
  cost,
  acquire: true,
  leaseId: "l1",
  leaseTtlMs: undefined,
  observations: undefined,
  learnedLimitTtlMs: 1_000,
  windowBounds: undefined,
});

describe("readAnswer", () => {
  const now = 7_200_000 + 5_000;

  it("types an admitted answer: header and every policy", () => {
    const a = readAnswer(evaluate(take(2), [], now).result, 3);
    expect(a).toMatchObject({ allowed: true, nowMs: now, leaseExpiresAtMs: now + 30_000 });
    expect(a.policyCount).toBe(3);
    expect(policyAnswer(a, 0)).toEqual({
      limit: 3,
      remaining: 1,
      resetAtMs: 3 * 3_600_000,
      retryAfterMs: 0,
      blocked: false,
    });
    expect([a.limit(1), a.remaining(1), a.resetAtMs(1)]).toEqual([2, 0, now + 120_000]);
    expect([a.limit(2), a.remaining(2), a.blocked(2)]).toEqual([1, 0, false]);
  });

  it("types a refusal: which policy blocked and for how long", () => {
    const a = readAnswer(evaluate(take(3), [], now).result, 3);
    expect(a.allowed).toBe(false);
    expect(a.leaseExpiresAtMs).toBe(0);
    expect(a.blocked(0)).toBe(false);
    expect(a.blocked(1)).toBe(true);
    expect(a.retryAfterMs(1)).toBe(-1); // 3 never fits a pool of 2
  });

  it("refuses an answer of the wrong length as a store failure that retrying will not fix", () => {
    const result = evaluate(take(1), [], now).result;
    expect(answerLength(3)).toBe(result.length);
    expect(() => readAnswer(result.slice(0, -1), 3)).toThrow(
      expect.objectContaining({ code: "STORE_UNAVAILABLE", retryable: false }),
    );
  });
});

describe("the entries", () => {
  it("keep store-author things out of @sluice/core", () => {
    for (const name of [
      "evaluate",
      "RESULT_HEADER",
      "RESULT_STRIDE",
      "KINDS",
      "readAnswer",
      "compilePolicies",
      "KeyPlan",
      "tokenBucket",
      "zoneWindowBounds",
    ]) {
      expect(core, name).not.toHaveProperty(name);
      expect(store, name).toHaveProperty(name);
    }
    expect(core).toHaveProperty("createLimiter");
    expect(core).toHaveProperty("isValidTimeZone");
  });
});
