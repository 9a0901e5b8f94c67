import { createLimiter, SluiceError } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { bucket, clockedStore, fixed, slots } from "./helpers.js";

describe("take", () => {
  it("charges every rate policy and reports the least remaining", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), fixed(10)] });
    const d = await limiter.take("k", { cost: 2 });
    expect(d).toMatchObject({ allowed: true, remaining: 3, retryAfterMs: 0, blockedBy: [] });
    expect(d.degraded).toBeUndefined();
    expect(d.policies.map((p) => [p.name, p.kind, p.limit, p.remaining])).toEqual([
      ["burst", "tokenBucket", 5, 3],
      ["daily", "fixedWindow", 10, 8],
    ]);
  });

  it("refills continuously, never above capacity", async () => {
    const clock = clockedStore();
    const limiter = createLimiter({ store: clock.store, policies: [bucket(3)] });
    await limiter.take("k", { cost: 3 });
    clock.advance(1500);
    expect((await limiter.peek("k")).remaining).toBe(1);
    clock.advance(60_000);
    expect((await limiter.peek("k")).remaining).toBe(3);
  });

  it("costs 1 by default", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    expect((await limiter.take("k")).remaining).toBe(4);
  });

  it("refuses without charging any policy when one policy is over", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), fixed(2)] });
    await limiter.take("k", { cost: 2 });
    const refused = await limiter.take("k");
    expect(refused.allowed).toBe(false);
    expect(refused.blockedBy).toEqual(["daily"]);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    const after = await limiter.peek("k");
    expect(after.policies[0]).toMatchObject({ name: "burst", remaining: 3 });
    expect(after.policies[1]).toMatchObject({ name: "daily", remaining: 0 });
  });

  it("names every policy that refused and waits for the slowest", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1), bucket(1, "slow", "10s")] });
    await limiter.take("k");
    const refused = await limiter.take("k");
    expect(refused.blockedBy).toEqual(["burst", "slow"]);
    expect(refused.retryAfterMs).toBe(10_000);
  });

  it("retries a refused fixed window at the end of the window", async () => {
    const { store, now } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(1, "hourly", "1h")] });
    await limiter.take("k");
    const refused = await limiter.take("k");
    const windowEnd = Math.ceil((now() + 1) / 3_600_000) * 3_600_000;
    expect(refused.retryAfterMs).toBe(windowEnd - now());
    expect(refused.policies[0]?.resetAtMs).toBe(windowEnd);
  });

  it("admits again once the bucket refills on the store clock", async () => {
    const { store, advance } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(2)] });
    await limiter.take("k", { cost: 2 });
    const refused = await limiter.take("k");
    expect(refused.retryAfterMs).toBe(1_000);
    advance(999);
    expect((await limiter.take("k")).allowed).toBe(false);
    advance(1);
    expect(await limiter.take("k")).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("refuses a cost above a capacity with retryAfterMs Infinity and charges nothing", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), fixed(100)] });
    const d = await limiter.take("k", { cost: 6 });
    expect(d).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(d.blockedBy).toEqual(["burst"]);
    const after = await limiter.peek("k");
    expect(after.policies.map((p) => p.remaining)).toEqual([5, 100]);
  });

  it("admits a cost of 0 without charging", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    expect(await limiter.take("k", { cost: 0 })).toMatchObject({ allowed: true, remaining: 5 });
  });

  it("reports remaining Infinity when no rate policy is charged", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [slots(2)] });
    const d = await limiter.take("k", { cost: 3 });
    expect(d).toMatchObject({ allowed: true, remaining: Number.POSITIVE_INFINITY });
    // A concurrency policy reports its free slots but a take does not use them.
    expect(d.policies[0]).toMatchObject({
      name: "slots",
      kind: "concurrency",
      remaining: 2,
      limit: 2,
    });
  });

  it("does not let a concurrency policy lower a take's remaining", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), slots(1)] });
    expect((await limiter.take("k")).remaining).toBe(4);
  });

  it.each([
    ["negative", -1],
    ["fractional", 1.5],
    ["NaN", Number.NaN],
    ["infinite", Number.POSITIVE_INFINITY],
    ["a string", "2"],
  ])("throws INVALID_ARGUMENT for a %s cost before calling the store", async (_, cost) => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const calls = [
      limiter.take("k", { cost: cost as number }),
      limiter.wait("k", { cost: cost as number }),
      limiter.tryAcquire("k", { cost: cost as number }),
      limiter.acquire("k", { cost: cost as number }),
      limiter.refund("k", { cost: cost as number }),
    ];
    for (const call of calls) {
      const e = await call.catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SluiceError);
      expect(e).toMatchObject({
        code: "INVALID_ARGUMENT",
        retryable: false,
        message: expect.stringContaining("cost"),
      });
    }
    expect(requests).toHaveLength(0);
  });
});

describe("peek", () => {
  it("charges nothing however often it is called", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(3), fixed(3)] });
    for (let i = 0; i < 5; i++) {
      expect(await limiter.peek("k")).toMatchObject({ allowed: true, remaining: 3 });
    }
    expect((await limiter.take("k", { cost: 3 })).allowed).toBe(true);
  });

  it("reports what is left now and whether a take of 1 would be admitted", async () => {
    const { store, advance } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(3)] });
    await limiter.take("k", { cost: 2 });
    expect(await limiter.peek("k")).toMatchObject({ allowed: true, remaining: 1 });
    await limiter.take("k");
    const empty = await limiter.peek("k");
    expect(empty).toMatchObject({ allowed: false, remaining: 0, blockedBy: ["burst"] });
    expect(empty.retryAfterMs).toBe(1_000);
    advance(1_000);
    expect(await limiter.peek("k")).toMatchObject({ allowed: true, remaining: 1 });
  });

  it("reports every policy in spec order with the time it is back to full", async () => {
    const { store, now } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(10), bucket(4), slots(2)] });
    await limiter.take("k", { cost: 2 });
    const d = await limiter.peek("k");
    expect(d.policies.map((p) => p.name)).toEqual(["daily", "burst", "slots"]);
    expect(d.policies[1]).toMatchObject({ remaining: 2, resetAtMs: now() + 2_000 });
    expect(d.policies[2]).toMatchObject({ remaining: 2, limit: 2 });
  });
});
