import { compilePolicies, evaluate, type StoreRequest, zoneWindowBounds } from "@sluice/core/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextOffsetChange } from "../src/testing/dst.js";
import { localDay, windowFromBounds } from "../src/time-zone.js";

const HOUR_MS = 3_600_000;
const zones = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"];

describe("zoned calendar windows", () => {
  it("start every window at a local midnight and contain the present", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.integer({ min: 1, max: 7 }),
        (zone, now, days) => {
          const bounds = zoneWindowBounds(zone, days, now);
          for (let i = 1; i < bounds.length; i++) {
            const b = bounds[i]!;
            expect(localDay(zone, b)).toBe(localDay(zone, b - 1) + 1);
            expect(localDay(zone, b) % days).toBe(0);
            // A window lasts its days give or take one DST shift (half an hour on Lord Howe).
            const drift = b - bounds[i - 1]! - days * 24 * HOUR_MS;
            expect(Math.abs(drift)).toBeLessThanOrEqual(HOUR_MS);
          }
          const [start, end] = windowFromBounds(bounds, days * 86_400_000, now);
          expect(start).toBeLessThanOrEqual(now);
          expect(end).toBeGreaterThan(now);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("charges a New York day window until local midnight, 23 hours after the last one, on 2026-03-08", () => {
    const policies = compilePolicies([
      { kind: "fixedWindow", name: "d", limit: 1, window: "1d", timeZone: "America/New_York" },
    ]);
    const now = Date.UTC(2026, 2, 8, 12); // 08:00 EDT, the day clocks sprang forward
    const request: StoreRequest = {
      op: "take",
      policies,
      keys: ["k"],
      partition: "k",
      cost: 1,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: 1,
      windowBounds: [zoneWindowBounds("America/New_York", 1, now)],
    };
    const first = evaluate(request, [undefined], now);
    expect(first.result[0]).toBe(1);
    expect(first.result[6]).toBe(Date.UTC(2026, 2, 9, 4)); // midnight EDT
    const second = evaluate(request, first.states, now + HOUR_MS);
    expect(second.result[0]).toBe(0);
    expect(second.result[7]).toBe(Date.UTC(2026, 2, 9, 4) - now - HOUR_MS);
  });

  it("finds the end of the next day on which the UTC offset changes", () => {
    const from = Date.UTC(2026, 0, 1);
    expect(nextOffsetChange("America/New_York", from)).toBe(Date.UTC(2026, 2, 9, 4));
    expect(nextOffsetChange("Europe/London", Date.UTC(2026, 5, 1))).toBe(Date.UTC(2026, 9, 25, 24));
    expect(nextOffsetChange("Asia/Kolkata", from)).toBeUndefined();
  });
});
