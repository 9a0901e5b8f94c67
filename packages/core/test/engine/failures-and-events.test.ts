import { subscribe, unsubscribe } from "node:diagnostics_channel";
import {
  createLimiter,
  type LimiterEvents,
  type Policy,
  SluiceError,
  type Store,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, describe, expect, it, vi } from "vitest";

const policies: Policy[] = [
  { kind: "tokenBucket", name: "rate", capacity: 2, refill: { tokens: 1, every: "1s" } },
];

/** A remote-looking store whose behaviour the test switches: the only fake here. */
function flakyStore() {
  const healthy = memoryStore();
  let mode: "ok" | "reject" | "hang" | "throw" = "ok";
  let calls = 0;
  const store: Store = {
    capabilities: { name: "flaky", clock: "server", local: false, requiresPartition: false },
    execute(request: StoreRequest): Promise<StoreResult> {
      calls++;
      if (mode === "throw") throw new Error("socket closed");
      if (mode === "reject") return Promise.reject(new Error("ECONNREFUSED 127.0.0.1:1"));
      if (mode === "hang") {
        // Fails long after the limiter gave up: must not surface as an unhandled rejection.
        return new Promise((_, reject) => setTimeout(() => reject(new Error("late failure")), 200));
      }
      return Promise.resolve(healthy.execute(request));
    },
  };
  return {
    store,
    set: (m: typeof mode) => {
      mode = m;
    },
    calls: () => calls,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("onStoreError", () => {
  it('"deny" refuses with a degraded decision and reports the error', async () => {
    const flaky = flakyStore();
    const limiter = createLimiter({ store: flaky.store, policies });
    const errors: LimiterEvents["storeError"][] = [];
    limiter.on("storeError", (e) => errors.push(e));
    flaky.set("reject");
    const d = await limiter.take("k");
    expect(d).toMatchObject({ allowed: false, degraded: true, blockedBy: [] });
    expect(d.retryAfterMs).toBeGreaterThan(0);
    expect(d.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error).toMatchObject({ code: "STORE_UNAVAILABLE", retryable: true });
    expect(errors[0]!.handling).toBe("deny");
  });

  it('"allow" admits with a degraded decision', async () => {
    const flaky = flakyStore();
    const limiter = createLimiter({ store: flaky.store, policies, onStoreError: "allow" });
    flaky.set("throw");
    expect(await limiter.take("k")).toMatchObject({ allowed: true, degraded: true });
  });

  it('"throw" rejects with a coded, retryable error', async () => {
    const flaky = flakyStore();
    const limiter = createLimiter({ store: flaky.store, policies, onStoreError: "throw" });
    flaky.set("reject");
    const error = await limiter.take("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: "STORE_UNAVAILABLE", retryable: true });
  });

  it("never waits longer than timeoutMs on a hanging store, and swallows its late failure", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const flaky = flakyStore();
      const limiter = createLimiter({
        store: flaky.store,
        policies,
        onStoreError: "throw",
        timeoutMs: 50,
      });
      flaky.set("hang");
      const started = Date.now();
      await expect(limiter.take("k")).rejects.toMatchObject({ code: "STORE_TIMEOUT" });
      expect(Date.now() - started).toBeLessThan(190);
      await new Promise((r) => setTimeout(r, 250));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("decides on the fallback store while the primary is down, then returns to the primary", async () => {
    const flaky = flakyStore();
    const fallback = memoryStore();
    const limiter = createLimiter({ store: flaky.store, policies, onStoreError: { fallback } });
    const switches: boolean[] = [];
    limiter.on("fallback", (e) => switches.push(e.active));
    flaky.set("reject");
    const d1 = await limiter.take("k");
    expect(d1).toMatchObject({ allowed: true, degraded: true, remaining: 1 });
    const callsWhileDown = flaky.calls();
    expect((await limiter.take("k")).remaining).toBe(0); // still the fallback, no new primary call
    expect(flaky.calls()).toBe(callsWhileDown);
    flaky.set("ok");
    vi.useFakeTimers({ now: Date.now() + 5_000, toFake: ["Date"] });
    const d3 = await limiter.take("k");
    expect(d3.degraded).toBeUndefined();
    expect(d3.remaining).toBe(1); // the primary's own state
    expect(switches).toEqual([true, false]);
  });

  it("passes a caller's mistake through instead of treating it as a store failure", async () => {
    const flaky = flakyStore();
    const limiter = createLimiter({ store: flaky.store, policies, onStoreError: "allow" });
    await expect(limiter.take("")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(flaky.calls()).toBe(0);
  });
});

describe("observability", () => {
  it("emits every decision on the limiter and on the sluice:decision channel", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies });
    const seen: string[] = [];
    const off = limiter.on("decision", (e) => seen.push(`${e.op}:${e.decision.allowed}`));
    const channel: unknown[] = [];
    const listener = (message: unknown) => channel.push(message);
    subscribe("sluice:decision", listener);
    try {
      await limiter.take("k");
      await limiter.peek("k");
      off();
      await limiter.take("k");
    } finally {
      unsubscribe("sluice:decision", listener);
    }
    expect(seen).toEqual(["take:true", "peek:true"]);
    expect(channel).toHaveLength(3);
    expect(channel[0]).toMatchObject({ op: "take", key: "k", cost: 1 });
  });

  it("publishes store errors on sluice:store-error", async () => {
    const flaky = flakyStore();
    const limiter = createLimiter({ store: flaky.store, policies });
    const messages: unknown[] = [];
    const listener = (m: unknown) => messages.push(m);
    subscribe("sluice:store-error", listener);
    try {
      flaky.set("reject");
      await limiter.take("k");
    } finally {
      unsubscribe("sluice:store-error", listener);
    }
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ op: "take", store: "flaky", handling: "deny" });
  });

  it("keeps deciding when a listener throws", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies });
    limiter.on("decision", () => {
      throw new Error("listener bug");
    });
    const onError = vi.fn();
    const original = process.listeners("uncaughtException");
    process.removeAllListeners("uncaughtException");
    process.on("uncaughtException", onError);
    try {
      expect((await limiter.take("k")).allowed).toBe(true);
      await new Promise((r) => setTimeout(r, 0));
      expect(onError).toHaveBeenCalledTimes(1);
    } finally {
      process.removeAllListeners("uncaughtException");
      for (const l of original) process.on("uncaughtException", l);
    }
  });
});
