import { createLimiter, type Policy } from "@sluice/core";
import { MemoryStore, memoryStore } from "@sluice/store-memory";
import { describe, expect, it, vi } from "vitest";

const hourly: Policy = { kind: "fixedWindow", name: "hourly", limit: 5, window: "1h" };

/** A store on a clock the test moves, with a limiter of one fixed window that admits every take. */
function onTestClock(window: string) {
  const clock = { now: 0 };
  const store = memoryStore({ clock: () => clock.now });
  const limiter = createLimiter({
    store,
    policies: [{ kind: "fixedWindow", name: "w", limit: 1_000_000, window }],
  });
  return { clock, store, limiter };
}

describe("memory store", () => {
  it("drops a key's state once it is back to default", async () => {
    const store = memoryStore();
    const limiter = createLimiter({ store, policies: [hourly] });
    await limiter.take("k", { cost: 2 });
    expect(store.size).toBe(1);
    await limiter.refund("k", { cost: 2 });
    expect(store.size).toBe(0);
    await limiter.take("k");
    await limiter.reset("k");
    expect(store.size).toBe(0);
  });

  it("sweeps state that drifted back to default while nobody touched it", async () => {
    const { clock, store, limiter } = onTestClock("1s");
    for (let i = 0; i < 5_000; i++) await limiter.take(`old-${i}`);
    clock.now += 2_000; // every old window has ended
    for (let i = 0; i < 5_000; i++) await limiter.take(`new-${i}`);
    // At most one full pass behind: the old keys are gone, the live ones stay.
    expect(store.size).toBeLessThan(6_000);
    expect(store.size).toBeGreaterThanOrEqual(5_000);
  });

  it("sweeps within a second of store time, however few the writes since the last pass", async () => {
    const { clock, store, limiter } = onTestClock("1s");
    // Passes at 1,024 and 5,120 writes: the last one just as the old keys are all written.
    for (let i = 0; i < 5_120; i++) await limiter.take(`old-${i}`);
    clock.now += 1_001; // every old window has ended, and a second has gone by since the last pass
    for (let i = 0; i < 6_000; i++) await limiter.take(`new-${i}`);
    expect(store.size).toBeLessThanOrEqual(6_000);
  });

  it("sweeps without waiting for the second once writes reach four times the map", async () => {
    const { clock, store, limiter } = onTestClock("10ms");
    // Keys sprayed faster than a second: each window ends 10 ms after its first take.
    for (let i = 0; i < 40_000; i++) {
      if (i % 1_000 === 0) clock.now += 20;
      await limiter.take(`k-${i}`);
    }
    expect(store.size).toBeLessThan(6_000);
  });

  it("evicts the least recently used keys beyond maxKeys", async () => {
    const store = memoryStore({ maxKeys: 3 });
    const limiter = createLimiter({ store, policies: [hourly] });
    for (const k of ["a", "b", "c"]) await limiter.take(k);
    await limiter.peek("a"); // a is now more recent than b
    await limiter.take("d");
    expect(store.size).toBe(3);
    expect((await limiter.peek("b")).remaining).toBe(5); // b was evicted: forgotten
    expect((await limiter.peek("a")).remaining).toBe(4);
    expect((await limiter.peek("c")).remaining).toBe(4);
  });

  it("keeps no timer that would hold the process open", async () => {
    vi.useFakeTimers();
    try {
      const store = memoryStore();
      const limiter = createLimiter({
        store,
        policies: [hourly, { kind: "concurrency", name: "c", limit: 2, leaseTtl: "1m" }],
      });
      await limiter.take("k");
      await (await limiter.tryAcquire("k")).lease?.release();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("decides on its injectable clock", async () => {
    let now = Date.UTC(2030, 0, 1);
    const limiter = createLimiter({ store: memoryStore({ clock: () => now }), policies: [hourly] });
    expect((await limiter.take("k")).policies[0]!.resetAtMs).toBe(Date.UTC(2030, 0, 1, 1));
    now += 3_600_000;
    expect((await limiter.take("k")).remaining).toBe(4);
  });

  it.each([{ maxKeys: 0 }, { maxKeys: 1.5 }, { maxKeys: -1 }, { clock: 5 }])(
    "refuses the option %j with a ConfigError naming it",
    (options) => {
      expect(() => new MemoryStore(options as never)).toThrow(
        expect.objectContaining({
          code: "CONFIG_INVALID",
          issues: [expect.objectContaining({ path: Object.keys(options)[0] })],
        }),
      );
    },
  );
});

describe("memory store with learned limits", () => {
  it("keeps what a bucket consumed under a higher learned limit through sweeps after the lapse", async () => {
    let now = 0;
    const store = memoryStore({ clock: () => now });
    const limiter = createLimiter({
      store,
      learnedLimitTtlMs: 1_000,
      policies: [
        { kind: "tokenBucket", name: "b", capacity: 10, refill: { tokens: 1, every: "1s" } },
      ],
    });
    await limiter.reconcile("k", { policy: "b", limit: 20 });
    await limiter.take("k", { cost: 15 });
    now = 7_000; // learned limit lapsed; 8 of the 15 still consumed, under a capacity of 10
    // Many writes elsewhere force full sweeps.
    for (let i = 0; i < 3_000; i++) await limiter.take(`other-${i}`);
    expect((await limiter.peek("k")).remaining).toBe(2);
  });
});
