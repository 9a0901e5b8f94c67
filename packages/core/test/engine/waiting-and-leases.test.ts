import { createLimiter, LimitTimeoutError, type Policy } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// Fake timers move Date.now too, so the memory store's default clock follows them.
beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2026, 0, 5, 12) });
});
afterEach(() => {
  vi.useRealTimers();
});

const perSecond = (capacity: number): Policy => ({
  kind: "tokenBucket",
  name: "rate",
  capacity,
  refill: { tokens: 1, every: "1s" },
});
const slots = (limit: number, leaseTtl = "10s"): Policy => ({
  kind: "concurrency",
  name: "slots",
  limit,
  leaseTtl,
});

describe("wait", () => {
  it("resolves with the admitting decision once capacity returns", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await limiter.take("k");
    let done = false;
    const waiting = limiter.wait("k").then((d) => {
      done = true;
      return d;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("admits waiters on one key in the order they called", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await limiter.take("k");
    const order: number[] = [];
    const all = [1, 2, 3].map((n) => limiter.wait("k").then(() => order.push(n)));
    await vi.advanceTimersByTimeAsync(3_000);
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3]);
  });

  it("rejects at once when the earliest admission is beyond timeoutMs", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await limiter.take("k");
    const error = await limiter.wait("k", { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LimitTimeoutError);
    expect(error).toMatchObject({ code: "WAIT_TIMEOUT", retryable: true });
    // Nothing was charged: the next second admits a waiter.
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("rejects at once a cost that can never fit, even without a timeout", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(3)] });
    await expect(limiter.wait("k", { cost: 4 })).rejects.toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it("rejects with the signal's reason on abort and loses no capacity", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await limiter.take("k");
    const controller = new AbortController();
    const waiting = limiter.wait("k", { signal: controller.signal });
    const reason = new Error("user went away");
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("rejects immediately when the signal is already aborted", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await expect(limiter.wait("k", { signal: AbortSignal.abort("stop") })).rejects.toBe("stop");
    expect((await limiter.peek("k")).remaining).toBe(1);
  });

  it("rejects queued waiters when the limiter closes, and refuses new calls", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(1)] });
    await limiter.take("k");
    const waiting = limiter.wait("k");
    limiter.close("tenant removed");
    await expect(waiting).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "tenant removed",
    });
    await expect(limiter.take("k")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("leases", () => {
  it("hands out a lease while a slot is free and none when all are held", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1)] });
    const first = await limiter.tryAcquire("k");
    expect(first.lease).not.toBeNull();
    expect(first.lease!.expiresAtMs).toBe(Date.now() + 10_000);
    const second = await limiter.tryAcquire("k");
    expect(second.lease).toBeNull();
    expect(second.decision).toMatchObject({ allowed: false, blockedBy: ["slots"], remaining: 0 });
    await first.lease!.release();
    await first.lease!.release(); // idempotent
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("charges rate policies and takes a slot in one decision", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [perSecond(2), slots(5)] });
    const { decision } = await limiter.tryAcquire("k");
    expect(decision.policies.map((p) => p.remaining)).toEqual([1, 4]);
    expect(decision.remaining).toBe(1);
  });

  it("frees the slot of a crashed holder once its lease expires", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1, "2s")] });
    await limiter.tryAcquire("k"); // never released
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("moves the expiry on renew and refuses to renew a released or expired lease", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(2, "2s")] });
    const lease = (await limiter.acquire("k"))!;
    await vi.advanceTimersByTimeAsync(1_500);
    await lease.renew();
    expect(lease.expiresAtMs).toBe(Date.now() + 2_000);
    await lease.renew(5_000);
    expect(lease.expiresAtMs).toBe(Date.now() + 5_000);
    await lease.release();
    await expect(lease.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    const other = await limiter.acquire("k");
    await vi.advanceTimersByTimeAsync(2_001);
    await expect(other.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    await expect(other.renew(-5)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("waits in acquire for a slot another caller releases", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1, "1h")] });
    const held = await limiter.acquire("k");
    let got = false;
    const next = limiter.acquire("k").then((l) => {
      got = true;
      return l;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(got).toBe(false);
    await held.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toBe(true);
    await (await next).release();
  });

  it("treats acquire's timeoutMs as a deadline for a slot", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1, "1h")] });
    await limiter.acquire("k");
    let settled: unknown;
    const attempt = limiter.acquire("k", { timeoutMs: 300 }).catch((e: unknown) => {
      settled = e;
    });
    await vi.advanceTimersByTimeAsync(299);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(10);
    await attempt;
    expect(settled).toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it("releases after run, whether the function returns or throws", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1)] });
    expect(await limiter.run("k", async () => "done")).toBe("done");
    await expect(
      limiter.run("k", async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect((await limiter.peek("k")).policies[0]!.remaining).toBe(1);
  });

  it("releases through Symbol.asyncDispose", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1)] });
    const lease = await limiter.acquire("k");
    await lease[Symbol.asyncDispose]();
    expect((await limiter.peek("k")).policies[0]!.remaining).toBe(1);
  });

  it("keeps a held lease's slot when the policies are updated", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: [slots(1)] });
    const lease = await limiter.acquire("k");
    limiter.updatePolicies([slots(2)]);
    expect((await limiter.peek("k")).policies[0]).toMatchObject({ limit: 2, remaining: 1 });
    await lease.release();
    expect((await limiter.peek("k")).policies[0]).toMatchObject({ limit: 2, remaining: 2 });
  });
});
