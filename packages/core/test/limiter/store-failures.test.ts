import { createLimiter, type LimiterEvents } from "@sluice/core";
import type { Store, StoreRequest, StoreResult } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  bucket,
  type FailureMode,
  failingStore,
  settled,
  slots,
  T0,
  timerStore,
} from "./helpers.js";

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

const policies = [bucket(5), slots(2)];

function failing(mode: FailureMode, onStoreError: "deny" | "allow" | "throw" = "deny") {
  const flaky = failingStore(mode);
  const limiter = createLimiter({ store: flaky.store, policies, onStoreError, timeoutMs: 200 });
  const errors: LimiterEvents["storeError"][] = [];
  limiter.on("storeError", (e) => errors.push(e));
  return { flaky, limiter, errors };
}

describe('onStoreError "deny"', () => {
  it.each(["reject", "throw"] as const)(
    "refuses, degraded, with no blocking policy and a short retry when the store fails (%s)",
    async (mode) => {
      const { limiter, errors } = failing(mode);
      const d = await limiter.take("k");
      expect(d).toMatchObject({ allowed: false, blockedBy: [], degraded: true });
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(1_000);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ op: "take", key: "k", store: "flaky", handling: "deny" });
      expect(errors[0]?.error).toMatchObject({ code: "STORE_UNAVAILABLE", retryable: true });
    },
  );

  it("answers a hanging store after timeoutMs, not before", async () => {
    const { limiter, errors } = failing("hang");
    const taking = limiter.take("k");
    await vi.advanceTimersByTimeAsync(199);
    expect(await settled(taking)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await taking).toMatchObject({ allowed: false, degraded: true });
    expect(errors[0]?.error).toMatchObject({ code: "STORE_TIMEOUT" });
  });

  it("refuses a tryAcquire without a lease", async () => {
    const { limiter } = failing("reject");
    const { decision, lease } = await limiter.tryAcquire("k");
    expect(lease).toBeNull();
    expect(decision).toMatchObject({ allowed: false, degraded: true });
  });
});

describe('onStoreError "allow"', () => {
  it("admits, degraded, when the store fails", async () => {
    const { limiter, errors } = failing("reject", "allow");
    const d = await limiter.take("k");
    expect(d).toMatchObject({ allowed: true, retryAfterMs: 0, blockedBy: [], degraded: true });
    expect(errors[0]).toMatchObject({ handling: "allow" });
  });

  it("still rejects a caller's mistake instead of admitting it, without calling the store", async () => {
    const { flaky, limiter } = failing("reject", "allow");
    await expect(limiter.take("")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(flaky.calls).toBe(0);
  });

  it("grants a lease that cannot be renewed and whose release is harmless", async () => {
    const { limiter } = failing("hang", "allow");
    const acquiring = limiter.tryAcquire("k");
    await vi.advanceTimersByTimeAsync(200);
    const { decision, lease } = await acquiring;
    expect(decision).toMatchObject({ allowed: true, degraded: true });
    expect(lease).not.toBeNull();
    await expect(lease?.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    await expect(lease?.release()).resolves.toBeUndefined();
  });
});

describe('onStoreError "throw"', () => {
  it("rejects with STORE_UNAVAILABLE when the store rejects", async () => {
    const { limiter, errors } = failing("reject", "throw");
    await expect(limiter.take("k")).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
      retryable: true,
    });
    expect(errors[0]).toMatchObject({ handling: "throw" });
  });

  it("rejects with STORE_UNAVAILABLE when the store throws synchronously", async () => {
    const { limiter } = failing("throw", "throw");
    await expect(limiter.peek("k")).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
  });

  it("rejects with STORE_TIMEOUT once timeoutMs passes on a hanging store", async () => {
    const { limiter } = failing("hang", "throw");
    const taking = limiter.take("k").catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(200);
    expect(await taking).toMatchObject({ code: "STORE_TIMEOUT", retryable: true });
  });

  it("rejects a wait with the store error instead of waiting", async () => {
    const { limiter } = failing("reject", "throw");
    await expect(limiter.wait("k")).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
  });
});

describe("store failures", () => {
  it("absorb a hung call that fails after the timeout: no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { flaky, limiter } = failing("hang");
      const taking = limiter.take("k");
      await vi.advanceTimersByTimeAsync(200);
      await taking;
      flaky.failHung();
      vi.useRealTimers();
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("emit a storeError event for every failing operation", async () => {
    const { flaky, limiter, errors } = failing("ok", "deny");
    const lease = (await limiter.tryAcquire("k")).lease!;
    flaky.mode = "reject";
    await limiter.take("k");
    await limiter.peek("k");
    await limiter.tryAcquire("k");
    await limiter.refund("k");
    await limiter.reconcile("k", { policy: "burst", remaining: 1 });
    await limiter.reset("k");
    await expect(lease.renew()).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    await lease.release();
    expect(errors.map((e) => [e.op, e.handling])).toEqual([
      ["take", "deny"],
      ["peek", "deny"],
      ["take", "deny"],
      ["refund", "ignored"],
      ["reconcile", "ignored"],
      ["reset", "ignored"],
      ["renew", "throw"],
      ["release", "ignored"],
    ]);
    expect(errors.every((e) => e.error.code === "STORE_UNAVAILABLE")).toBe(true);
  });

  it("reject renew whatever onStoreError says: a lease cannot be renewed without the store", async () => {
    const { flaky, limiter } = failing("ok", "allow");
    const lease = (await limiter.tryAcquire("k")).lease!;
    flaky.mode = "hang";
    const renewing = lease.renew().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(200);
    expect(await renewing).toMatchObject({ code: "STORE_TIMEOUT" });
  });

  it("let a wait through once the store recovers", async () => {
    const { flaky, limiter, errors } = failing("reject", "deny");
    const waiting = limiter.wait("k");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await settled(waiting)).toBe(false);
    expect(errors.length).toBeGreaterThan(1);
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(1_000);
    const d = await waiting;
    expect(d).toMatchObject({ allowed: true, remaining: 4 });
    expect(d.degraded).toBeUndefined();
  });

  it("end a wait on a dead store by its timeoutMs plus at most one store timeout", async () => {
    const { flaky, limiter } = failing("hang", "deny");
    const waiting = limiter.wait("k", { timeoutMs: 1_000 }).catch((e: unknown) => e);
    // An attempt in flight at the deadline is allowed to finish (store timeoutMs 200).
    await vi.advanceTimersByTimeAsync(1_200);
    expect(await settled(waiting)).toBe(true);
    expect(await waiting).toMatchObject({ code: "WAIT_TIMEOUT" });
    expect(flaky.calls).toBeGreaterThanOrEqual(2);
  });

  it("go through onStoreError when a local store throws synchronously", async () => {
    const inner = memoryStore();
    let broken = true;
    const store: Store = {
      capabilities: inner.capabilities,
      execute(request: StoreRequest): StoreResult {
        if (broken) throw new Error("corrupt state");
        return inner.execute(request);
      },
    };
    const limiter = createLimiter({ store, policies, onStoreError: "allow" });
    const errors: unknown[] = [];
    limiter.on("storeError", (e) => errors.push(e));
    expect(await limiter.take("k")).toMatchObject({ allowed: true, degraded: true });
    expect(errors).toHaveLength(1);
    broken = false;
    expect((await limiter.take("k")).degraded).toBeUndefined();
  });

  it("call a local store that answers with a promise exactly once per decision", async () => {
    const inner = memoryStore();
    const ops: string[] = [];
    const store: Store = {
      capabilities: inner.capabilities,
      execute(request: StoreRequest): Promise<StoreResult> {
        ops.push(request.op);
        return Promise.resolve(inner.execute(request));
      },
    };
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    expect((await limiter.take("k")).remaining).toBe(4);
    expect((await limiter.peek("k")).remaining).toBe(4);
    expect(ops).toEqual(["take", "peek"]);
  });
});

describe("onStoreError { fallback }", () => {
  function withFallback(mode: FailureMode) {
    const flaky = failingStore(mode);
    const { store: fallback, requests: fallbackRequests } = timerStore();
    const limiter = createLimiter({
      store: flaky.store,
      policies: [bucket(5)],
      onStoreError: { fallback },
      timeoutMs: 200,
    });
    const switches: LimiterEvents["fallback"][] = [];
    const errors: LimiterEvents["storeError"][] = [];
    limiter.on("fallback", (e) => switches.push(e));
    limiter.on("storeError", (e) => errors.push(e));
    return { flaky, limiter, fallbackRequests, switches, errors };
  }

  it("decides on the fallback store, degraded, when the primary fails", async () => {
    const { limiter, switches, errors } = withFallback("reject");
    const d = await limiter.take("k", { cost: 2 });
    expect(d).toMatchObject({ allowed: true, remaining: 3, degraded: true });
    expect(switches).toEqual([{ active: true, store: "memory" }]);
    expect(errors[0]).toMatchObject({ handling: "fallback" });
    // The fallback keeps its own consumption.
    expect(await limiter.take("k", { cost: 3 })).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter.take("k")).allowed).toBe(false);
  });

  it("stays on the fallback without calling the dead primary for every decision", async () => {
    const { flaky, limiter } = withFallback("hang");
    const first = limiter.take("k");
    await vi.advanceTimersByTimeAsync(200);
    expect((await first).degraded).toBe(true);
    const callsAfterFailure = flaky.calls;
    for (let i = 0; i < 3; i++) {
      expect((await limiter.take("k")).degraded).toBe(true);
    }
    expect(flaky.calls).toBe(callsAfterFailure);
  });

  it("returns to the primary once it answers again", async () => {
    const { flaky, limiter, switches } = withFallback("reject");
    await limiter.take("k");
    flaky.mode = "ok";
    await vi.advanceTimersByTimeAsync(1_000);
    const d = await limiter.take("k");
    expect(d.degraded).toBeUndefined();
    expect(d.remaining).toBe(4);
    expect(switches.map((s) => s.active)).toEqual([true, false]);
    expect(flaky.ops.at(-1)).toBe("take");
  });

  it("keeps probing the primary while it stays down", async () => {
    const { flaky, limiter, switches } = withFallback("reject");
    await limiter.take("k");
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await limiter.take("k")).degraded).toBe(true);
    expect(flaky.calls).toBe(2);
    expect(switches.map((s) => s.active)).toEqual([true]);
  });

  it("rejects with the fallback's error when the fallback fails too", async () => {
    const flaky = failingStore("reject");
    const dead = failingStore("throw");
    const limiter = createLimiter({
      store: flaky.store,
      policies: [bucket(5)],
      onStoreError: { fallback: dead.store },
    });
    await expect(limiter.take("k")).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
  });
});
