import { createLimiter } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { clockedStore } from "./helpers.js";

const DAY_MS = 86_400_000;
const daily = {
  kind: "fixedWindow",
  name: "d",
  limit: 3,
  window: "1d",
  timeZone: "America/New_York",
} as const;

describe("time-zone bounds and the store's clock", () => {
  it("sends a take again once, with bounds around a store clock far from Date.now", async () => {
    // A year before the client's Date.now, whatever day the test runs.
    const clock = clockedStore(Math.floor(Date.now() / DAY_MS) * DAY_MS - 365 * DAY_MS);
    const limiter = createLimiter({ store: clock.store, policies: [daily] });
    expect((await limiter.take("k")).allowed).toBe(true);
    expect(clock.requests).toHaveLength(2);
    const [first, second] = clock.requests;
    expect(first!.windowBounds?.[0]?.[0]).toBeGreaterThan(clock.now());
    expect(second!.windowBounds?.[0]?.[0]).toBeLessThanOrEqual(clock.now());
    // The clock is known from then on: one round trip per decision.
    await limiter.take("k");
    await limiter.peek("k");
    expect(clock.requests).toHaveLength(4);
  });

  it("decides in one round trip when the store's clock is the client's", async () => {
    const clock = clockedStore(Date.now());
    const limiter = createLimiter({ store: clock.store, policies: [daily] });
    await limiter.take("k");
    await limiter.take("k");
    expect(clock.requests).toHaveLength(2);
  });

  it("asks again once more when the store's clock jumps by days", async () => {
    const clock = clockedStore(Date.now());
    const limiter = createLimiter({ store: clock.store, policies: [daily] });
    for (let i = 0; i < 3; i++) await limiter.take("k");
    expect((await limiter.take("k")).allowed).toBe(false);
    clock.advance(30 * DAY_MS);
    expect((await limiter.take("k")).allowed).toBe(true);
    expect(clock.requests).toHaveLength(6);
  });
});
