import { createLimiter, type LimiterEvents } from "@sluice/core";
import type { Store } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bucket, clockedStore, distantStore, fixed, slots, T0 } from "./helpers.js";

const HOUR = 3_600_000;

describe("refund", () => {
  it("gives back a charge to every rate policy", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), fixed(10)] });
    await limiter.take("k", { cost: 3 });
    await limiter.refund("k", { cost: 2 });
    expect((await limiter.peek("k")).policies.map((p) => p.remaining)).toEqual([4, 9]);
  });

  it("never raises a policy above full", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), fixed(10)] });
    await limiter.take("k");
    await limiter.refund("k", { cost: 50 });
    const d = await limiter.peek("k");
    expect(d.policies.map((p) => [p.limit, p.remaining])).toEqual([
      [5, 5],
      [10, 10],
    ]);
    expect((await limiter.take("k", { cost: 6 })).retryAfterMs).toBe(Number.POSITIVE_INFINITY);
  });

  it("on a fresh key changes nothing", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    await limiter.refund("fresh");
    expect((await limiter.peek("fresh")).remaining).toBe(5);
  });
});

describe("reconcile on a store whose clock is not ours", () => {
  /** A store on another host, its clock five hours ahead of this process's. */
  function remoteAhead(): Store {
    return distantStore(() => Date.now() + 5 * HOUR, {}).store;
  }

  for (const first of ["take", "reconcile"] as const) {
    it(`reads a server's reset on this process's clock (${first} first)`, async () => {
      const limiter = createLimiter({ store: remoteAhead(), policies: [fixed(5)] });
      if (first === "take") await limiter.take("k");
      // The server says: nothing left for 10 s, by our clock.
      await limiter.reconcile("k", {
        policy: "daily",
        remaining: 0,
        resetAtMs: Date.now() + 10_000,
      });
      const d = await limiter.take("k");
      expect(d.allowed).toBe(false);
      expect(d.retryAfterMs).toBeGreaterThan(9_000);
      // At most a ms late: the offset is bounded from above (never early).
      expect(d.retryAfterMs).toBeLessThanOrEqual(10_001);
    });
  }
});

describe("reconcile on a store whose answers come back slowly", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /**
   * A store five hours ahead (`skew.ms`) that decides at once and whose answer spends `backMs` on
   * its way back, as a busy shared store's does.
   */
  function slowBack(backMs: number) {
    const skew = { ms: 5 * HOUR };
    const { store } = distantStore(() => Date.now() + skew.ms, { wayBackMs: backMs });
    return { store, skew };
  }

  /** The time (our clock) the store holds a reconciled reset until, read through a take. */
  async function heldUntil(limiter: ReturnType<typeof createLimiter>, resetAtMs: number) {
    await settle(limiter.reconcile("k", { policy: "daily", remaining: 0, resetAtMs }));
    const sentAt = Date.now();
    const d = await settle(limiter.take("k"));
    expect(d.allowed).toBe(false);
    return sentAt + d.retryAfterMs;
  }

  async function settle<T>(p: Promise<T>): Promise<T> {
    await vi.advanceTimersByTimeAsync(100);
    return p;
  }

  it("never moves a server's reset early by the answers' trip back", async () => {
    vi.useFakeTimers({ now: T0 });
    const { store } = slowBack(30);
    const limiter = createLimiter({ store, policies: [fixed(5)] });
    await settle(limiter.take("k"));
    const resetAtMs = Date.now() + 10_000;
    // Measured when an answer arrives, the store's clock looks 30 ms behind: the reset would
    // come 30 ms early. Bounded from the send, it comes at most a ms late.
    const until = await heldUntil(limiter, resetAtMs);
    expect(until).toBeGreaterThanOrEqual(resetAtMs);
    expect(until).toBeLessThanOrEqual(resetAtMs + 1);
  });

  it("follows a store clock that steps ahead", async () => {
    vi.useFakeTimers({ now: T0 });
    const { store, skew } = slowBack(0);
    const limiter = createLimiter({ store, policies: [fixed(5)] });
    await settle(limiter.take("k"));
    skew.ms += HOUR;
    await settle(limiter.take("k"));
    const resetAtMs = Date.now() + 10_000;
    const until = await heldUntil(limiter, resetAtMs);
    expect(until).toBeGreaterThanOrEqual(resetAtMs);
    expect(until).toBeLessThanOrEqual(resetAtMs + 1);
  });
});

describe("reconcile on the fallback of a skewed store", () => {
  it("hands the fallback the server's reset on this process's clock", async () => {
    // A remote store five hours ahead that answers once, then fails: the fallback takes over.
    const inner = memoryStore({ clock: () => Date.now() + 5 * HOUR });
    let up = true;
    const remote: Store = {
      capabilities: { ...inner.capabilities, local: false },
      execute: (request) =>
        up ? Promise.resolve(inner.execute(request)) : Promise.reject(new Error("down")),
    };
    const limiter = createLimiter({
      store: remote,
      policies: [fixed(5)],
      onStoreError: { fallback: memoryStore() },
      breaker: false,
    });
    await limiter.take("k");
    up = false;
    await limiter.reconcile("k", { policy: "daily", remaining: 0, resetAtMs: Date.now() + 10_000 });
    const d = await limiter.take("k");
    expect(d.degraded).toBe(true);
    expect(d.retryAfterMs).toBeGreaterThan(9_000);
    expect(d.retryAfterMs).toBeLessThanOrEqual(10_000);
  });
});

describe("reconcile remaining", () => {
  it("lowers local state to the server's remaining", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10), fixed(100)] });
    await limiter.reconcile("k", { policy: "daily", remaining: 3 });
    const d = await limiter.peek("k");
    expect(d.policies.map((p) => p.remaining)).toEqual([10, 3]);
    expect((await limiter.take("k", { cost: 4 })).blockedBy).toEqual(["daily"]);
  });

  it("never raises local state", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    await limiter.take("k", { cost: 8 });
    await limiter.reconcile("k", { policy: "burst", remaining: 9 });
    expect((await limiter.peek("k")).remaining).toBe(2);
    // Nor a fixed window's: a later, higher report leaves the lower one in force.
    const window = createLimiter({ store, policies: [fixed(100, "quota")] });
    await window.reconcile("w", [{ policy: "quota", remaining: 40 }]);
    expect((await window.peek("w")).remaining).toBe(40);
    await window.reconcile("w", [{ policy: "quota", remaining: 90 }]);
    expect((await window.peek("w")).remaining).toBe(40);
  });

  it("accepts a list of observations", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10), fixed(100)] });
    await limiter.reconcile("k", [
      { policy: "burst", remaining: 4 },
      { policy: "daily", remaining: 50 },
    ]);
    expect((await limiter.peek("k")).policies.map((p) => p.remaining)).toEqual([4, 50]);
  });

  it("holds a fixed window at the server's remaining until the server's reset", async () => {
    const { store, now, advance } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(100, "hourly", "1h")] });
    const resetAtMs = now() + 10 * 60_000;
    await limiter.reconcile("k", { policy: "hourly", remaining: 0, resetAtMs });
    const refused = await limiter.take("k");
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 10 * 60_000 });
    expect(refused.policies[0]?.resetAtMs).toBe(resetAtMs);
    advance(10 * 60_000);
    expect(await limiter.take("k")).toMatchObject({ allowed: true, remaining: 99 });
  });

  it("rejects a malformed observation with INVALID_ARGUMENT before calling the store", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    for (const bad of [
      { policy: "burst", remaining: -1 },
      { policy: "burst", limit: 0 },
      { policy: "burst", resetAtMs: Number.NaN },
      { policy: "burst", remaining: "3" },
      { remaining: 1 },
      null,
    ]) {
      await expect(limiter.reconcile("k", bad as never)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    }
    expect(requests).toHaveLength(0);
  });
});

describe("reconcile limit", () => {
  it("replaces the configured limit upward", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    await limiter.reconcile("k", { policy: "burst", limit: 20 });
    expect((await limiter.peek("k")).policies[0]).toMatchObject({ limit: 20 });
    expect(await limiter.take("k", { cost: 15 })).toMatchObject({ allowed: true, remaining: 5 });
  });

  it("replaces the configured limit downward, making larger costs impossible", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(100)] });
    await limiter.reconcile("k", { policy: "daily", limit: 3 });
    const d = await limiter.take("k", { cost: 4 });
    expect(d).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(d.policies[0]?.limit).toBe(3);
  });

  it("applies only to the key it was observed for", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    await limiter.reconcile("a", { policy: "burst", limit: 2 });
    expect((await limiter.peek("b")).policies[0]?.limit).toBe(10);
  });

  it("is shared through the store with another limiter", async () => {
    const { store } = clockedStore();
    const a = createLimiter({ store, policies: [bucket(10)] });
    const b = createLimiter({ store, policies: [bucket(10)] });
    await a.reconcile("k", { policy: "burst", limit: 4 });
    const d = await b.take("k", { cost: 5 });
    expect(d).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(d.policies[0]?.limit).toBe(4);
  });

  it("is shared through the store until it lapses, upward as well", async () => {
    const clock = clockedStore();
    const policies = [fixed(10, "quota")];
    const a = createLimiter({ store: clock.store, policies, learnedLimitTtlMs: 60_000 });
    const b = createLimiter({ store: clock.store, policies, learnedLimitTtlMs: 60_000 });
    await a.reconcile("k", { policy: "quota", limit: 25 });
    expect((await b.take("k")).policies[0]).toMatchObject({ limit: 25, remaining: 24 });
    clock.advance(61_000);
    expect((await b.peek("k")).policies[0]).toMatchObject({ limit: 10, remaining: 9 });
  });

  it("lapses after learnedLimitTtlMs, each observation refreshing it", async () => {
    const { store, advance } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [fixed(5, "hourly", "1h")],
      learnedLimitTtlMs: 60_000,
    });
    await limiter.reconcile("k", { policy: "hourly", limit: 8 });
    advance(40_000);
    await limiter.reconcile("k", { policy: "hourly", limit: 8 });
    advance(40_000);
    expect((await limiter.peek("k")).policies[0]?.limit).toBe(8);
    advance(20_000);
    expect((await limiter.peek("k")).policies[0]?.limit).toBe(5);
  });

  it("lapses after 24 hours by default", async () => {
    const { store, advance } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    await limiter.reconcile("k", { policy: "burst", limit: 50 });
    advance(24 * HOUR - 1);
    expect((await limiter.peek("k")).policies[0]?.limit).toBe(50);
    advance(1);
    expect((await limiter.peek("k")).policies[0]?.limit).toBe(10);
  });
});

describe("reconcile resetAtMs", () => {
  it("ends the current fixed window at the server's reset, then follows the policy's alignment", async () => {
    const { store, now, advance } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(3, "hourly", "1h")] });
    // The clock starts on the hour; the server's window ends 15 minutes in.
    const serverReset = now() + 15 * 60_000;
    await limiter.take("k", { cost: 3 });
    await limiter.reconcile("k", { policy: "hourly", resetAtMs: serverReset });
    const refused = await limiter.take("k");
    expect(refused.retryAfterMs).toBe(15 * 60_000);
    expect(refused.policies[0]?.resetAtMs).toBe(serverReset);
    advance(15 * 60_000);
    const fresh = await limiter.take("k", { cost: 3 });
    expect(fresh.allowed).toBe(true);
    // The next window follows the epoch-aligned hour.
    expect(fresh.policies[0]?.resetAtMs).toBe(T0 + HOUR);
  });
});

describe("reconcile unknown policy", () => {
  it("ignores an observation naming no policy of the limiter and emits an event", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    const ignored: LimiterEvents["observationIgnored"][] = [];
    limiter.on("observationIgnored", (e) => ignored.push(e));
    await limiter.reconcile("k", { policy: "nope", remaining: 0 });
    expect(ignored).toHaveLength(1);
    expect(ignored[0]).toMatchObject({ key: "k", observation: { policy: "nope", remaining: 0 } });
    expect(ignored[0]?.reason).toContain("nope");
    expect(requests).toHaveLength(0);
    expect((await limiter.peek("k")).remaining).toBe(10);
  });

  it("still applies the known observations of the same call", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10)] });
    const ignored: unknown[] = [];
    limiter.on("observationIgnored", (e) => ignored.push(e));
    await limiter.reconcile("k", [
      { policy: "other", remaining: 0 },
      { policy: "burst", remaining: 1 },
    ]);
    expect(ignored).toHaveLength(1);
    expect((await limiter.peek("k")).remaining).toBe(1);
  });
});

describe("reset", () => {
  it("forgets consumption, learned limits and held slots of that key only", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(10), fixed(5), slots(1)] });
    await limiter.take("k", { cost: 4 });
    await limiter.reconcile("k", { policy: "burst", limit: 6 });
    await limiter.tryAcquire("k");
    await limiter.take("other", { cost: 2 });
    await limiter.reset("k");
    const d = await limiter.peek("k");
    expect(d.policies.map((p) => [p.limit, p.remaining])).toEqual([
      [10, 10],
      [5, 5],
      [1, 1],
    ]);
    expect((await limiter.peek("other")).remaining).toBe(3);
  });
});
