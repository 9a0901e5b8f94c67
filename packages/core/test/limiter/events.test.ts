import { channel, subscribe, unsubscribe } from "node:diagnostics_channel";
import { createLimiter, type LimiterEvents } from "@sluice/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bucket, clockedStore, failingStore, slots } from "./helpers.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("decision events", () => {
  it("report every take, peek and tryAcquire with the decision returned", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), slots(1)] });
    const seen: LimiterEvents["decision"][] = [];
    limiter.on("decision", (e) => seen.push(e));
    const took = await limiter.take("k", { cost: 2 });
    const peeked = await limiter.peek({ id: "k" });
    const acquired = await limiter.tryAcquire("k");
    expect(seen.map((e) => [e.op, e.cost])).toEqual([
      ["take", 2],
      ["peek", 0],
      ["tryAcquire", 1],
    ]);
    expect(seen[0]?.decision).toBe(took);
    expect(seen[1]).toMatchObject({ key: { id: "k" } });
    expect(seen[1]?.decision).toBe(peeked);
    expect(seen[2]?.decision).toBe(acquired.decision);
  });

  it("report the attempts a wait makes, ending with the admitting one", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const seen: boolean[] = [];
    limiter.on("decision", (e) => seen.push(e.decision.allowed));
    const d = await limiter.wait("k");
    expect(seen).toEqual([true]);
    expect(d.allowed).toBe(true);
  });

  it("stop after the listener is removed, by the returned function or off()", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const a = vi.fn();
    const b = vi.fn();
    const stopA = limiter.on("decision", a);
    limiter.on("decision", b);
    await limiter.take("k");
    stopA();
    limiter.off("decision", b);
    await limiter.take("k");
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(1);
  });
});

describe("listeners", () => {
  it("cannot break a decision: a listener's error surfaces on its own", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(2)] });
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

describe("diagnostics_channel", () => {
  it("delivers decisions to sluice:decision subscribers", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const received: unknown[] = [];
    const onMessage = (m: unknown) => received.push(m);
    subscribe("sluice:decision", onMessage);
    try {
      const d = await limiter.take("k");
      expect(received).toEqual([{ op: "take", key: "k", cost: 1, decision: d }]);
    } finally {
      unsubscribe("sluice:decision", onMessage);
    }
    await limiter.take("k");
    expect(received).toHaveLength(1);
  });

  it("publishes nothing when nobody subscribes or listens", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const decisions = channel("sluice:decision");
    expect(decisions.hasSubscribers).toBe(false);
    const publish = vi.spyOn(decisions, "publish");
    await limiter.take("k");
    await limiter.peek("k");
    await limiter.wait("k");
    await limiter.tryAcquire("k");
    expect(publish).not.toHaveBeenCalled();
    // A limiter listener alone does not publish on the channel either.
    limiter.on("decision", () => {});
    await limiter.take("k");
    expect(publish).not.toHaveBeenCalled();
  });

  it("delivers store errors, fallback switches and ignored observations", async () => {
    const flaky = failingStore("reject");
    const { store: fallback } = clockedStore();
    const limiter = createLimiter({
      store: flaky.store,
      policies: [bucket(5)],
      onStoreError: { fallback },
    });
    const got: Record<string, unknown[]> = {};
    const names = ["sluice:store-error", "sluice:fallback", "sluice:observation-ignored"];
    const handlers = names.map((name) => {
      const h = (m: unknown) => (got[name] ??= []).push(m);
      subscribe(name, h);
      return [name, h] as const;
    });
    try {
      await limiter.take("k");
      await limiter.reconcile("k", { policy: "missing", remaining: 0 });
    } finally {
      for (const [name, h] of handlers) unsubscribe(name, h);
    }
    expect(got["sluice:store-error"]).toEqual([
      expect.objectContaining({ op: "take", key: "k", store: "flaky", handling: "fallback" }),
    ]);
    expect(got["sluice:fallback"]).toEqual([{ active: true, store: "memory" }]);
    expect(got["sluice:observation-ignored"]).toEqual([
      expect.objectContaining({ key: "k", observation: { policy: "missing", remaining: 0 } }),
    ]);
  });
});
