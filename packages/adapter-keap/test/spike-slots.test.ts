import { createLimiter, type Policy } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";
import { SpikeSlots } from "../src/spike-slots.js";

/** A spike bucket of one request every 44 ms (in µs units) on a store whose clock `clock.now` sets. */
function spikeBucket() {
  const clock = { now: 1_000_000 };
  const store = memoryStore({ clock: () => clock.now });
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
  return { clock, limiter, slots, key, take: () => limiter.take(key) };
}

describe("SpikeSlots", () => {
  it("moves the next slot of the request-sized bucket to the given time", async () => {
    const { clock, slots, key, take } = spikeBucket();
    expect((await take()).allowed).toBe(true);
    // Next slot at +44 ms by the bucket; hold it to +50.5 ms.
    await slots.notBefore(key, clock.now + 50.5, clock.now, 44_000, 1000, 1);
    const d = await take();
    expect(d.allowed).toBe(false);
    expect(d.retryAfterMs).toBe(51);
    clock.now += 50;
    expect((await take()).allowed).toBe(false);
    clock.now += 1;
    expect((await take()).allowed).toBe(true);
  });

  it("holds a slot due sooner than one spacing from now at its time, not a spacing from now", async () => {
    const { clock, slots, key, take } = spikeBucket();
    const admittedAt = clock.now;
    expect((await take()).allowed).toBe(true);
    // The answer is in 6 ms later: the request reached the gateway 3.2 ms late, so the next slot
    // moves from +44 to +47.2 ms, which is less than one spacing from now.
    clock.now += 6;
    await slots.notBefore(key, admittedAt + 47.2, clock.now, 44_000, 1000, 1);
    clock.now = admittedAt + 47;
    expect((await take()).allowed).toBe(false);
    clock.now += 1;
    expect((await take()).allowed).toBe(true);
  });
});
