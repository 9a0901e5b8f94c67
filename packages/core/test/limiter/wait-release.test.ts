import { getEventListeners } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createLimiter, type Limiter } from "@sluice/core";
import { afterEach, describe, expect, it } from "vitest";
import { clockedStore, fixed, settled, slots } from "./helpers.js";

// Real timers: the head of each queue sleeps for an hour of a frozen store clock, so nothing here
// is admitted by time passing; only what the test does can move a waiter.

/** The collector, whether or not the process was started with --expose-gc. */
function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/**
 * Whether `target` gets collected. (A FinalizationRegistry rather than a WeakRef: creating a
 * WeakRef keeps its target alive until the job ends, which a test's awaits may not reach.)
 */
function collectable(target: object): () => boolean {
  let collected = false;
  const registry = new FinalizationRegistry<undefined>(() => {
    collected = true;
  });
  registry.register(target, undefined);
  // The registry must outlive the collection for its callback to run.
  return () => registry !== undefined && collected;
}

async function heapAfterCollection(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return process.memoryUsage().heapUsed;
}

const limiters: Limiter[] = [];
afterEach(() => {
  for (const l of limiters.splice(0)) l.close();
});

/** A limiter whose key "k" is used up for the hour, with a waiter asleep at the head. */
async function blockedHead() {
  const clock = clockedStore();
  const limiter = createLimiter({ store: clock.store, policies: [fixed(1, "hourly", "1h")] });
  limiters.push(limiter);
  await limiter.take("k");
  const head = limiter.wait("k");
  head.catch(() => {});
  expect(await settled(head)).toBe(false);
  return { limiter, head, clock };
}

describe("waiters are freed", () => {
  it("keeps nothing of an aborted waiter behind a blocked head", async () => {
    const gc = collector();
    const { limiter, head } = await blockedHead();
    const c = new AbortController();
    let key: { id: string } | undefined = { id: "k" };
    const collected = collectable(key);
    const waiting = limiter.wait(key, { signal: c.signal }).catch((e: unknown) => e);
    key = undefined;
    c.abort(new Error("gone"));
    expect(await waiting).toMatchObject({ message: "gone" });
    await heapAfterCollection(gc);
    expect(collected()).toBe(true);
    expect(await settled(head)).toBe(false);
  });

  it("keeps nothing of a waiter that timed out behind a blocked head", async () => {
    const gc = collector();
    const clock = clockedStore();
    const limiter = createLimiter({ store: clock.store, policies: [slots(1)] });
    limiters.push(limiter);
    await limiter.acquire("k");
    // acquire() always queues (a slot may free at any moment), so both wait in line.
    const head = limiter.acquire({ id: "k" });
    head.catch(() => {});
    let key: { id: string } | undefined = { id: "k" };
    const collected = collectable(key);
    // Only the code is kept: an error holds the receivers of its frames until its stack is read.
    const outcome = limiter.acquire(key, { timeoutMs: 1 }).then(
      () => "admitted",
      (e: { code?: string }) => e.code,
    );
    key = undefined;
    expect(await outcome).toBe("WAIT_TIMEOUT");
    await heapAfterCollection(gc);
    expect(collected()).toBe(true);
    expect(await settled(head)).toBe(false);
  });

  it("holds memory back to within 10 MB of the baseline after 200,000 aborted waits", async () => {
    const gc = collector();
    const { limiter, head } = await blockedHead();
    const baseline = await heapAfterCollection(gc);
    const reason = new Error("gone");
    // A signal per hundred waits, aborted once they all wait: aborting costs Node far more per
    // signal than a wait costs us.
    for (let batch = 0; batch < 20; batch++) {
      const waits: Promise<unknown>[] = [];
      const signals: AbortController[] = [];
      for (let i = 0; i < 10_000; i++) {
        if (i % 100 === 0) signals.push(new AbortController());
        const { signal } = signals[signals.length - 1]!;
        waits.push(limiter.wait("k", { signal }).catch(() => undefined));
      }
      for (const c of signals) c.abort(reason);
      await Promise.all(waits);
    }
    const after = await heapAfterCollection(gc);
    expect(after - baseline).toBeLessThan(10 * 1024 * 1024);
    expect(await settled(head)).toBe(false);
  }, 60_000);

  it("adds one abort listener to a signal however many waits share it", async () => {
    const { limiter } = await blockedHead();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const c = new AbortController();
      const waits = Array.from({ length: 100 }, () =>
        limiter.wait("k", { signal: c.signal }).catch((e: unknown) => e),
      );
      const other = createLimiter({
        store: clockedStore().store,
        policies: [fixed(1, "hourly", "1h")],
      });
      limiters.push(other);
      await other.take("k");
      waits.push(other.wait("k", { signal: c.signal }).catch((e: unknown) => e));
      expect(getEventListeners(c.signal, "abort")).toHaveLength(1);
      const reason = new Error("all gone");
      c.abort(reason);
      for (const w of await Promise.all(waits)) expect(w).toBe(reason);
      await new Promise((r) => setImmediate(r));
      expect(warnings.map((w) => w.name)).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("takes its listener off a shared signal once no wait uses it", async () => {
    const { limiter } = await blockedHead();
    const c = new AbortController();
    const waits = Array.from({ length: 3 }, () =>
      limiter.wait("k", { signal: c.signal }).catch((e: unknown) => e),
    );
    limiter.close();
    await Promise.all(waits);
    expect(getEventListeners(c.signal, "abort")).toHaveLength(0);
  });

  it("wakes the sleeping head when the key is reset", async () => {
    const { limiter, head } = await blockedHead();
    await limiter.reset("k");
    expect(await head).toMatchObject({ allowed: true, remaining: 0 });
  }, 5_000);
});
