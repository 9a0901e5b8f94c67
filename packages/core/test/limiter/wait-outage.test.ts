import { createLimiter, type LimiterOptions } from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bucket, type FailureMode, failingStore, settled, slots, T0 } from "./helpers.js";

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(mode: FailureMode, options: Partial<LimiterOptions> = {}) {
  const flaky = failingStore(mode);
  const limiter = createLimiter({
    store: flaky.store,
    policies: [bucket(5), slots(2)],
    timeoutMs: 1_000,
    ...options,
  });
  return { flaky, limiter };
}

/** When (fake ms after now) a promise settles, advancing time in 5 ms steps. */
async function settlesAfter(p: Promise<unknown>, maxMs: number): Promise<number> {
  p.catch(() => {});
  const start = Date.now();
  while (Date.now() - start <= maxMs) {
    if (await settled(p)) return Date.now() - start;
    await vi.advanceTimersByTimeAsync(5);
  }
  return Number.POSITIVE_INFINITY;
}

describe("waiting through an outage", () => {
  it.each(["wait", "acquire"] as const)(
    "%s with timeoutMs rejects WAIT_TIMEOUT within 50 ms of its deadline on a hanging store",
    async (method) => {
      for (const breaker of [false, undefined] as const) {
        const { limiter } = setup("hang", breaker === false ? { breaker } : {});
        const waiting = limiter[method]("k", { timeoutMs: 3_000 });
        const after = await settlesAfter(waiting, 5_000);
        expect(after).toBeGreaterThanOrEqual(3_000);
        expect(after).toBeLessThanOrEqual(3_050);
        await expect(waiting).rejects.toMatchObject({ code: "WAIT_TIMEOUT" });
      }
    },
  );

  it("rejects WAIT_TIMEOUT on time with a store that refuses at once (deny)", async () => {
    const { limiter } = setup("reject");
    const waiting = limiter.wait("k", { timeoutMs: 700 });
    const after = await settlesAfter(waiting, 2_000);
    expect(after).toBeGreaterThanOrEqual(700);
    expect(after).toBeLessThanOrEqual(750);
    await expect(waiting).rejects.toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it.each(["wait", "acquire"] as const)(
    '%s rejects with the store error under "throw"',
    async (method) => {
      const { limiter } = setup("reject", { onStoreError: "throw" });
      await expect(limiter[method]("k", { timeoutMs: 1_000 })).rejects.toMatchObject({
        code: "STORE_UNAVAILABLE",
      });
      const hanging = setup("hang", { onStoreError: "throw" });
      const waiting = hanging.limiter[method]("k");
      expect(await settlesAfter(waiting, 1_100)).toBeLessThanOrEqual(1_005);
      await expect(waiting).rejects.toMatchObject({ code: "STORE_TIMEOUT" });
    },
  );

  it("without a timeout backs off instead of spinning, and resolves once the store is back", async () => {
    const { flaky, limiter } = setup("reject", { breaker: false });
    const waiting = limiter.wait("k");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await settled(waiting)).toBe(false);
    // Backing off to one attempt per 2 s at most: about 35 attempts in a minute, not thousands.
    expect(flaky.calls).toBeLessThan(45);
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await waiting).toMatchObject({ allowed: true, remaining: 4 });
    expect((await waiting).degraded).toBeUndefined();
  });

  it("an acquire without a timeout resolves with a lease once the store is back (breaker on)", async () => {
    const { flaky, limiter } = setup("reject");
    const acquiring = limiter.acquire("k");
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await settled(acquiring)).toBe(false);
    flaky.mode = "ok";
    // The next attempt's probe finds the store back; the one after it takes the lease.
    await vi.advanceTimersByTimeAsync(4_500);
    const lease = await acquiring;
    expect(lease.id).toEqual(expect.any(String));
    await lease.release();
  });
});
