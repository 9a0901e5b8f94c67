import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createLimiter, type LimiterEvents, type LimiterOptions } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bucket, type FailureMode, failingStore, settled, T0 } from "./helpers.js";

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
    policies: [bucket(100)],
    timeoutMs: 200,
    breaker: { failures: 3, probeMs: 500 },
    ...options,
  });
  const events: string[] = [];
  const down: LimiterEvents["storeDown"][] = [];
  const up: LimiterEvents["storeUp"][] = [];
  limiter.on("storeDown", (e) => {
    events.push("down");
    down.push(e);
  });
  limiter.on("storeUp", (e) => {
    events.push("up");
    up.push(e);
  });
  return { flaky, limiter, events, down, up };
}

describe("circuit breaker", () => {
  it("stops calling a failing store after `failures` in a row and answers at once", async () => {
    const { flaky, limiter, events, down } = setup("reject");
    for (let i = 0; i < 3; i++) await limiter.take("k");
    expect(flaky.calls).toBe(3);
    expect(events).toEqual(["down"]);
    expect(down[0]).toMatchObject({ store: "flaky", failures: 3 });
    expect(down[0]?.error.code).toBe("STORE_UNAVAILABLE");
    for (let i = 0; i < 50; i++) {
      expect(await limiter.take("k")).toMatchObject({ allowed: false, degraded: true });
    }
    expect(flaky.calls).toBe(3);
  });

  it("answers without waiting timeoutMs once open on a hanging store", async () => {
    const { flaky, limiter } = setup("hang");
    const first = [limiter.take("a"), limiter.take("b"), limiter.take("c")];
    await vi.advanceTimersByTimeAsync(200);
    for (const t of first) expect(await t).toMatchObject({ degraded: true });
    const fast = limiter.take("d");
    expect(await settled(fast)).toBe(true);
    expect(await fast).toMatchObject({ allowed: false, degraded: true });
    expect(flaky.calls).toBe(3);
  });

  it("sends one probe per probeMs, and the first success closes it", async () => {
    const { flaky, limiter, events, up } = setup("reject");
    for (let i = 0; i < 3; i++) await limiter.take("k");
    await vi.advanceTimersByTimeAsync(499);
    for (let i = 0; i < 10; i++) await limiter.take("k");
    expect(flaky.calls).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    for (let i = 0; i < 10; i++) await limiter.take("k");
    // One probe (a peek: it charges nothing), then no call until the next period.
    expect(flaky.ops.slice(3)).toEqual(["peek"]);
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(500);
    expect(await limiter.take("k")).toMatchObject({ degraded: true }); // sends the probe
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(["down", "up"]);
    expect(up[0]?.downMs).toBe(1_000);
    const d = await limiter.take("k");
    expect(d.degraded).toBeUndefined();
    expect(d).toMatchObject({ allowed: true, remaining: 99 });
  });

  it("counts failures in a row only: a success in between starts over", async () => {
    const { flaky, limiter, events } = setup("reject");
    await limiter.take("k");
    await limiter.take("k");
    flaky.mode = "ok";
    await limiter.take("k");
    flaky.mode = "reject";
    await limiter.take("k");
    await limiter.take("k");
    expect(events).toEqual([]);
    await limiter.take("k");
    expect(events).toEqual(["down"]);
  });

  it("follows onStoreError while open: allow admits, throw rejects with STORE_UNAVAILABLE", async () => {
    const allow = setup("reject", { onStoreError: "allow" });
    for (let i = 0; i < 5; i++) {
      expect(await allow.limiter.take("k")).toMatchObject({ allowed: true, degraded: true });
    }
    expect(allow.flaky.calls).toBe(3);
    const strict = setup("reject", { onStoreError: "throw" });
    for (let i = 0; i < 3; i++) await expect(strict.limiter.take("k")).rejects.toThrow();
    await expect(strict.limiter.take("k")).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
      message: expect.stringContaining("breaker open"),
    });
    expect(strict.flaky.calls).toBe(3);
  });

  it("decides on the fallback store while open, and hands back when a probe succeeds", async () => {
    const fallback = memoryStore({ clock: () => Date.now() });
    const { flaky, limiter, events } = setup("hang", {
      onStoreError: { fallback },
      breaker: { failures: 1, probeMs: 500 },
    });
    const fallbackEvents: boolean[] = [];
    limiter.on("fallback", (e) => fallbackEvents.push(e.active));
    const first = limiter.take("k");
    await vi.advanceTimersByTimeAsync(200);
    expect(await first).toMatchObject({ allowed: true, degraded: true });
    for (let i = 0; i < 10; i++) {
      const t = limiter.take("k");
      expect(await settled(t)).toBe(true);
      expect(await t).toMatchObject({ allowed: true, degraded: true });
    }
    expect(flaky.calls).toBe(1);
    expect(events).toEqual(["down"]);
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(500);
    // Still on the fallback: the probe (a peek) goes out in the background.
    expect(await limiter.take("k")).toMatchObject({ degraded: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(flaky.ops.at(-1)).toBe("peek");
    expect(events).toEqual(["down", "up"]);
    expect(fallbackEvents).toEqual([true, false]);
    expect((await limiter.take("k")).degraded).toBeUndefined();
  });

  it("keeps an in-process store out of the fast path while open, and back once closed", async () => {
    const flaky = failingStore("throw", { capabilities: { local: true } });
    const limiter = createLimiter({
      store: flaky.store,
      policies: [bucket(100)],
      breaker: { failures: 3, probeMs: 500 },
    });
    for (let i = 0; i < 3; i++) await limiter.take("k");
    expect(flaky.calls).toBe(3);
    for (let i = 0; i < 10; i++) {
      expect(await limiter.take("k")).toMatchObject({ allowed: false, degraded: true });
    }
    expect(flaky.calls).toBe(3);
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(500);
    await limiter.take("k");
    await vi.advanceTimersByTimeAsync(0);
    expect(flaky.ops.at(-1)).toBe("peek");
    expect((await limiter.take("k")).degraded).toBeUndefined();
    expect(flaky.ops.at(-1)).toBe("take");
  });

  it("decides an in-process store's takes on the fallback while it is active", async () => {
    const flaky = failingStore("throw", { capabilities: { local: true } });
    const limiter = createLimiter({
      store: flaky.store,
      policies: [bucket(100)],
      onStoreError: { fallback: memoryStore({ clock: () => Date.now() }) },
      breaker: false,
    });
    expect(await limiter.take("k")).toMatchObject({ allowed: true, degraded: true });
    expect(flaky.calls).toBe(1);
    for (let i = 0; i < 10; i++) {
      expect(await limiter.take("k")).toMatchObject({ allowed: true, degraded: true });
    }
    // Only the background probes reach the primary while the fallback decides.
    expect(flaky.ops.filter((op) => op === "take")).toEqual(["take"]);
  });

  it("is off with breaker: false (every call goes to the store)", async () => {
    const { flaky, limiter, events } = setup("reject", { breaker: false });
    for (let i = 0; i < 20; i++) await limiter.take("k");
    expect(flaky.calls).toBe(20);
    expect(events).toEqual([]);
  });

  it("publishes storeDown and storeUp on the diagnostics channel", async () => {
    const seen: string[] = [];
    const onDown = () => seen.push("down");
    const onUp = () => seen.push("up");
    subscribe("sluice:store-down", onDown);
    subscribe("sluice:store-up", onUp);
    try {
      const { flaky, limiter } = setup("reject");
      for (let i = 0; i < 3; i++) await limiter.take("k");
      flaky.mode = "ok";
      await vi.advanceTimersByTimeAsync(500);
      await limiter.take("k");
      await vi.advanceTimersByTimeAsync(0);
      expect(seen).toEqual(["down", "up"]);
    } finally {
      unsubscribe("sluice:store-down", onDown);
      unsubscribe("sluice:store-up", onUp);
    }
  });

  it("does not count non-retryable errors, which reject whatever onStoreError says", async () => {
    const { flaky, limiter, events } = setup("ok");
    const inner = flaky.store.execute.bind(flaky.store);
    let calls = 0;
    flaky.store.execute = () => {
      calls++;
      return Promise.reject(
        Object.assign(new (class extends Error {})("relation missing"), { name: "x" }),
      );
    };
    // A plain Error is a retryable failure (STORE_UNAVAILABLE): the default deny applies.
    expect(await limiter.take("k")).toMatchObject({ degraded: true });
    const { SluiceError } = await import("@sluice/core");
    flaky.store.execute = () => {
      calls++;
      return Promise.reject(
        new SluiceError("STORE_UNAVAILABLE", "run store.migrate()", { retryable: false }),
      );
    };
    for (let i = 0; i < 6; i++) {
      await expect(limiter.take("k")).rejects.toMatchObject({
        code: "STORE_UNAVAILABLE",
        retryable: false,
        message: "run store.migrate()",
      });
    }
    expect(calls).toBe(7);
    expect(events).toEqual([]);
    flaky.store.execute = inner;
  });

  it("refuses bad breaker options with a ConfigError naming the field", () => {
    const store = memoryStore();
    const policies = [bucket(1)];
    for (const [breaker, path] of [
      [{ failures: 0 }, "breaker.failures"],
      [{ failures: 1.5 }, "breaker.failures"],
      [{ probeMs: 0 }, "breaker.probeMs"],
      [{ probeMs: Number.NaN }, "breaker.probeMs"],
      [{ probeMs: "1s" }, "breaker.probeMs"],
      [{ probe: 10 }, "breaker.probe"],
      ["on", "breaker"],
    ] as const) {
      let error: unknown;
      try {
        createLimiter({ store, policies, breaker: breaker as never });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: "CONFIG_INVALID" });
      expect((error as { issues: { path: string }[] }).issues.map((i) => i.path)).toContain(path);
    }
  });
});

describe("request deadlines", () => {
  it("sends remote stores the store-clock deadline of each request, learned from answers", async () => {
    const seen: (number | undefined)[] = [];
    const skew = 60_000; // the store clock runs a minute ahead
    const inner = memoryStore({ clock: () => Date.now() + skew });
    const limiter = createLimiter({
      store: {
        capabilities: { name: "remote", clock: "server", local: false, requiresPartition: false },
        execute: async (request) => {
          seen.push(request.deadlineMs);
          return inner.execute(request);
        },
      },
      policies: [bucket(10)],
      timeoutMs: 300,
    });
    await limiter.take("k");
    await limiter.take("k");
    expect(seen[0]).toBe(T0 + 300);
    expect(seen[1]).toBe(T0 + skew + 300);
  });

  it("learns a store clock far ahead from a deadline refusal and decides at once", async () => {
    const { DeadlinePassedError } = await import("@sluice/core/store");
    const skew = 60_000;
    const inner = memoryStore({ clock: () => Date.now() + skew });
    const limiter = createLimiter({
      store: {
        capabilities: { name: "remote", clock: "server", local: false, requiresPartition: false },
        execute: async (request) => {
          const now = Date.now() + skew;
          if (request.deadlineMs !== undefined && now > request.deadlineMs) {
            throw new DeadlinePassedError("remote", now, request.deadlineMs);
          }
          return inner.execute(request);
        },
      },
      policies: [bucket(10)],
      timeoutMs: 300,
    });
    let calls = 0;
    limiter.on("storeError", () => calls++);
    const first = await limiter.take("k");
    expect(first.degraded).toBeUndefined();
    expect(first).toMatchObject({ allowed: true, remaining: 9 });
    expect(await limiter.take("k")).toMatchObject({ allowed: true, remaining: 8 });
    expect(calls).toBe(0);
  });

  it("sends in-process stores no deadline", async () => {
    const seen: (number | undefined)[] = [];
    const inner = memoryStore();
    const limiter = createLimiter({
      store: {
        capabilities: inner.capabilities,
        execute: (request) => {
          seen.push(request.deadlineMs);
          return inner.execute(request);
        },
      },
      policies: [bucket(10)],
    });
    await limiter.take("k");
    expect(seen).toEqual([undefined]);
  });
});
