import { createLimiter, type Policy } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";
import { SpikeSlots } from "../src/spike-slots.js";

describe("SpikeSlots", () => {
  it("moves the next slot of the request-sized bucket to the given time", async () => {
    let now = 1_000_000;
    const store = memoryStore({ clock: () => now });
    const spike = {
      kind: "tokenBucket",
      name: "spike",
      scope: ["app"],
      capacity: 1,
      refill: { tokens: 1000, every: 44_000 },
    } as const satisfies Policy;
    const shared = { store, prefix: "keap", partitionBy: "app" };
    const limiter = createLimiter({ ...shared, policies: [spike] });
    const slots = new SpikeSlots(shared, spike);
    const key = { app: "a" };
    expect((await limiter.take(key)).allowed).toBe(true);
    // Next slot at +44 ms by the bucket; hold it to +50.5 ms.
    await slots.notBefore(key, now + 50.5, now, 44_000, 1000, 1);
    const d = await limiter.take(key);
    expect(d.allowed).toBe(false);
    expect(d.retryAfterMs).toBe(51);
    now += 50;
    expect((await limiter.take(key)).allowed).toBe(false);
    now += 1;
    expect((await limiter.take(key)).allowed).toBe(true);
  });

  it("holds a slot due sooner than one spacing from now at its time, not a spacing from now", async () => {
    let now = 1_000_000;
    const store = memoryStore({ clock: () => now });
    const spike = {
      kind: "tokenBucket",
      name: "spike",
      scope: ["app"],
      capacity: 1,
      refill: { tokens: 1000, every: 44_000 },
    } as const satisfies Policy;
    const shared = { store, prefix: "keap", partitionBy: "app" };
    const limiter = createLimiter({ ...shared, policies: [spike] });
    const slots = new SpikeSlots(shared, spike);
    const key = { app: "a" };
    const admittedAt = now;
    expect((await limiter.take(key)).allowed).toBe(true);
    // The answer is in 6 ms later: the request reached the gateway 3.2 ms late, so the next slot
    // moves from +44 to +47.2 ms, which is less than one spacing from now.
    now += 6;
    await slots.notBefore(key, admittedAt + 47.2, now, 44_000, 1000, 1);
    now = admittedAt + 47;
    expect((await limiter.take(key)).allowed).toBe(false);
    now += 1;
    expect((await limiter.take(key)).allowed).toBe(true);
  });
});
