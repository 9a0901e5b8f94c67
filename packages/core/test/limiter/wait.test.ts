import { createLimiter, LimitTimeoutError } from "@sluice/core";
import type { Store } from "@sluice/core/store";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bucket, distantStore, fixed, settled, T0, timerStore } from "./helpers.js";

// Fake timers move Date.now, which is the memory store's injected clock here.
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(policies = [bucket(1)]) {
  const { store, requests } = timerStore();
  return { limiter: createLimiter({ store, policies }), requests };
}

describe("wait", () => {
  it("resolves at once with the admitting decision when capacity is there", async () => {
    const { limiter } = setup([bucket(3)]);
    const d = await limiter.wait("k", { cost: 2 });
    expect(d).toMatchObject({ allowed: true, remaining: 1, retryAfterMs: 0 });
  });

  it("resolves with the admitting decision once capacity returns, not before", async () => {
    const { limiter } = setup();
    await limiter.take("k");
    const waiting = limiter.wait("k");
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toMatchObject({ allowed: true, remaining: 0, blockedBy: [] });
    expect((await limiter.peek("k")).remaining).toBe(0);
  });

  it("admits waiters on one key in call order even when a later one would fit sooner", async () => {
    const { limiter } = setup([bucket(3)]);
    await limiter.take("k", { cost: 3 });
    const order: string[] = [];
    const big = limiter.wait("k", { cost: 3 }).then(() => order.push("big"));
    const small = limiter.wait("k", { cost: 1 }).then(() => order.push("small"));
    // The small one alone would fit after 1 s; FIFO keeps it behind the big one.
    await vi.advanceTimersByTimeAsync(2_500);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(order).toEqual(["big"]);
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all([big, small]);
    expect(order).toEqual(["big", "small"]);
  });

  it("admits many waiters one per refill in order", async () => {
    const { limiter } = setup();
    await limiter.take("k");
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((n) => limiter.wait("k").then(() => order.push(n)));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(order).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it("keeps separate queues per key", async () => {
    const { limiter } = setup();
    await limiter.take("a");
    const blocked = limiter.wait("a");
    expect(await limiter.wait("b")).toMatchObject({ allowed: true });
    await vi.advanceTimersByTimeAsync(1_000);
    await blocked;
  });

  it("rejects at once with WAIT_TIMEOUT when the earliest admission is beyond timeoutMs", async () => {
    const { limiter } = setup([bucket(1, "burst", "10s")]);
    await limiter.take("k");
    const error = await limiter.wait("k", { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(Date.now()).toBe(T0); // no time passed: it did not sleep until the timeout
    expect(error).toBeInstanceOf(LimitTimeoutError);
    expect(error).toMatchObject({ code: "WAIT_TIMEOUT", retryable: true });
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("rejects a newcomer at once when the queue ahead of it pushes admission past its timeout", async () => {
    const { limiter } = setup();
    await limiter.take("k");
    const first = limiter.wait("k");
    await vi.advanceTimersByTimeAsync(0);
    // The first waiter takes the token at +1 s; the next one cannot be in within 500 ms.
    await expect(limiter.wait("k", { timeoutMs: 500 })).rejects.toMatchObject({
      code: "WAIT_TIMEOUT",
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await first;
  });

  it("admits within timeoutMs when capacity returns in time", async () => {
    const { limiter } = setup();
    await limiter.take("k");
    const waiting = limiter.wait("k", { timeoutMs: 1_500 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await waiting).toMatchObject({ allowed: true });
  });

  it("rejects at once a cost that can never fit, even with timeoutMs Infinity", async () => {
    const { limiter, requests } = setup([bucket(10), fixed(3)]);
    const error = await limiter
      .wait("k", { cost: 4, timeoutMs: Number.POSITIVE_INFINITY })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LimitTimeoutError);
    expect((error as LimitTimeoutError).earliestAtMs).toBe(Number.POSITIVE_INFINITY);
    expect(requests.filter((r) => r.op === "take")).toHaveLength(0);
  });

  it("rejects at once when a learned limit makes the cost impossible", async () => {
    const { limiter } = setup([bucket(10)]);
    await limiter.reconcile("k", { policy: "burst", limit: 3 });
    await expect(limiter.wait("k", { cost: 5 })).rejects.toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it("waits for a cost above the configured capacity that a learned limit allows", async () => {
    const { limiter } = setup([bucket(5)]);
    await limiter.reconcile("k", { policy: "burst", limit: 10 });
    expect((await limiter.take("k", { cost: 7 })).allowed).toBe(true);
    const waiting = limiter.wait("k", { cost: 7 });
    await vi.advanceTimersByTimeAsync(4_000);
    expect(await waiting).toMatchObject({ allowed: true });
  });

  it("rejects with the signal's reason on abort and loses no capacity", async () => {
    const { limiter } = setup();
    await limiter.take("k");
    const controller = new AbortController();
    const waiting = limiter.wait("k", { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(300);
    const reason = new Error("client went away");
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(700);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("rejects with the reason of an already aborted signal without calling the store", async () => {
    const { limiter, requests } = setup();
    const reason = new Error("too late");
    await expect(limiter.wait("k", { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(requests).toHaveLength(0);
  });

  it("refunds a take admitted for a waiter that aborted during the attempt", async () => {
    const { limiter } = setup([bucket(3)]);
    await limiter.take("k", { cost: 3 });
    const controller = new AbortController();
    const reason = new Error("aborted mid-flight");
    // Abort from inside the store round trip that admits the waiter.
    limiter.on("decision", ({ decision }) => {
      if (decision.allowed) controller.abort(reason);
    });
    const waiting = limiter.wait("k", { cost: 2, signal: controller.signal }).catch((e) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await waiting).toBe(reason);
    // 2 tokens refilled; the aborted waiter's charge of 2 came back.
    expect((await limiter.peek("k")).remaining).toBe(2);
  });

  it("lets the next waiter in when the head aborts", async () => {
    const { limiter } = setup([bucket(3)]);
    await limiter.take("k", { cost: 3 });
    const controller = new AbortController();
    const head = limiter.wait("k", { cost: 3, signal: controller.signal });
    const next = limiter.wait("k", { cost: 1 });
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(new Error("bye"));
    await expect(head).rejects.toThrow("bye");
    await vi.advanceTimersByTimeAsync(500);
    expect(await next).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("throws INVALID_ARGUMENT for a negative or NaN timeoutMs", async () => {
    const { limiter, requests } = setup();
    await expect(limiter.wait("k", { timeoutMs: -1 })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(limiter.wait("k", { timeoutMs: Number.NaN })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(requests).toHaveLength(0);
  });
});

/** Gaps between consecutive admissions. */
const gaps = (at: readonly number[]) => at.slice(1).map((t, i) => t - at[i]!);

describe("wait, against a store its tries reach late", () => {
  // One token every 100 ms, capacity 1: each admission frees the next one 100 ms later.
  const policies = [bucket(1, "burst", "100ms")];

  async function waitInTurn(store: Store, count: number) {
    const limiter = createLimiter({ store, policies });
    const all = Array.from({ length: count }, () => limiter.wait("k"));
    await vi.advanceTimersByTimeAsync(count * 110);
    await Promise.all(all);
    return limiter;
  }

  it("learns to send its tries early by what they are late, so admissions keep the refill's pace", async () => {
    const { store, state } = distantStore(() => Date.now(), { wayOutMs: 2 });
    await waitInTurn(store, 40);
    const seen = gaps(state.admittedAt);
    // At first each try lands 2 ms after the time the store named: gaps of 102 ms.
    expect(seen.slice(0, 3)).toEqual([102, 102, 102]);
    // Then it leaves 2 ms early and lands on time.
    expect(seen.slice(-10)).toEqual(Array(10).fill(100));
    // Never early: the store decides, and no gap is shorter than the refill.
    expect(Math.min(...seen)).toBe(100);
  });

  it("leaves later again once its tries land early, and stops paying a store call for it", async () => {
    const { store, state } = distantStore(() => Date.now(), { wayOutMs: 2 });
    const limiter = await waitInTurn(store, 30);
    // The network got faster: a try sent 2 ms early now lands 2 ms early and is refused.
    state.wayOutMs = 0;
    const all = Array.from({ length: 30 }, () => limiter.wait("k"));
    const callsBefore = state.calls;
    await vi.advanceTimersByTimeAsync(30 * 110);
    await Promise.all(all);
    expect(Math.min(...gaps(state.admittedAt))).toBe(100);
    // Relearning cost refused early tries: more than one call for the first waiter (the bucket
    // refilled meanwhile) and two for each after it.
    const calls = state.calls;
    expect(calls - callsBefore).toBeGreaterThan(1 + 29 * 2);
    // Settled: no early tries any more.
    const more = Array.from({ length: 10 }, () => limiter.wait("k"));
    await vi.advanceTimersByTimeAsync(10 * 110);
    await Promise.all(more);
    expect(state.calls - calls).toBe(1 + 9 * 2);
    expect(gaps(state.admittedAt).slice(-9)).toEqual(Array(9).fill(100));
  });
});
