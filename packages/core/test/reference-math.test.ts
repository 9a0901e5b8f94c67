import type { Policy } from "@sluice/core";
import {
  compilePolicies,
  evaluate,
  localMidnight,
  type PolicyStateRecord,
  type StoreRequest,
  zoneWindowBounds,
} from "@sluice/core/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** Drives evaluate() for one key the way a store would. */
function single(policy: Policy) {
  const policies = compilePolicies([policy]);
  let state: PolicyStateRecord | undefined;
  const run = (
    op: StoreRequest["op"],
    now: number,
    cost = 1,
    extra: Partial<StoreRequest> = {},
  ) => {
    const request: StoreRequest = {
      op,
      policies,
      keys: ["k"],
      partition: "k",
      cost,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: 60_000,
      windowBounds: undefined,
      ...extra,
    };
    const e = evaluate(request, [state], now);
    if (e.write) state = e.states[0];
    const r = e.result;
    return {
      allowed: r[0] === 1,
      limit: r[4]!,
      remaining: r[5]!,
      resetAtMs: r[6]!,
      retryAfterMs: r[7]!,
    };
  };
  return { run, state: () => state };
}

describe("pool", () => {
  it("refills in whole steps counted from when it first dropped below capacity", () => {
    const pool = single({
      kind: "pool",
      name: "p",
      capacity: 10,
      refill: { tokens: 2, every: 500 },
    });
    expect(pool.run("take", 1_000, 5).remaining).toBe(5);
    expect(pool.run("take", 1_300, 1).remaining).toBe(4); // no step yet: steps count from 1000
    expect(pool.run("peek", 1_499).remaining).toBe(4);
    expect(pool.run("peek", 1_500).remaining).toBe(6);
    expect(pool.run("peek", 2_499).remaining).toBe(8);
    expect(pool.run("peek", 2_500).remaining).toBe(10);
    expect(pool.state()).toBeDefined();
    expect(pool.run("take", 5_000, 1).resetAtMs).toBe(5_500); // full again: a new anchor
  });

  it("tells when enough whole steps will have arrived", () => {
    const pool = single({
      kind: "pool",
      name: "p",
      capacity: 10,
      refill: { tokens: 1, every: 500 },
    });
    pool.run("take", 0, 10);
    const refused = pool.run("take", 100, 3);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 1_400 });
  });
});

describe("token bucket", () => {
  it("refills continuously and never above capacity", () => {
    const bucket = single({
      kind: "tokenBucket",
      name: "b",
      capacity: 4,
      refill: { tokens: 2, every: "1s" },
    });
    bucket.run("take", 0, 4);
    expect(bucket.run("peek", 250).remaining).toBe(0);
    expect(bucket.run("peek", 500).remaining).toBe(1);
    expect(bucket.run("peek", 1_750).remaining).toBe(3);
    expect(bucket.run("peek", 60_000).remaining).toBe(4);
  });

  it("computes waits exactly in whole milliseconds", () => {
    const bucket = single({
      kind: "tokenBucket",
      name: "b",
      capacity: 3,
      refill: { tokens: 1, every: 300 },
    });
    bucket.run("take", 1_000, 3);
    expect(bucket.run("take", 1_000, 2)).toMatchObject({
      allowed: false,
      retryAfterMs: 600,
      resetAtMs: 1_900,
    });
    expect(bucket.run("take", 1_600, 2)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("holds refill back until a reconciled server reset", () => {
    const bucket = single({
      kind: "tokenBucket",
      name: "b",
      capacity: 10,
      refill: { tokens: 10, every: "1s" },
    });
    bucket.run("reconcile", 0, 0, {
      observations: [{ remaining: 1, limit: undefined, resetAtMs: 5_000 }],
    });
    expect(bucket.run("peek", 4_000).remaining).toBe(1);
    expect(bucket.run("peek", 5_100).remaining).toBe(2);
  });
});

describe("fixed window", () => {
  it("resets on epoch-aligned windows in UTC", () => {
    const window = single({ kind: "fixedWindow", name: "w", limit: 2, window: "1m" });
    window.run("take", 61_000, 2);
    expect(window.run("take", 119_999)).toMatchObject({
      allowed: false,
      retryAfterMs: 1,
      resetAtMs: 120_000,
    });
    expect(window.run("take", 120_000).allowed).toBe(true);
  });

  it("starts a first-use window at the first admission", () => {
    const window = single({
      kind: "fixedWindow",
      name: "w",
      limit: 1,
      window: "1m",
      align: "firstUse",
    });
    expect(window.run("take", 61_000).resetAtMs).toBe(121_000);
    expect(window.run("take", 120_999).allowed).toBe(false);
    expect(window.run("take", 121_000).allowed).toBe(true);
  });

  it("refuses a cost above the limit as never fitting and charges nothing", () => {
    const window = single({ kind: "fixedWindow", name: "w", limit: 3, window: "1m" });
    expect(window.run("take", 0, 4)).toMatchObject({ allowed: false, retryAfterMs: -1 });
    expect(window.state()).toBeUndefined();
  });

  it("keeps a learned limit until it lapses", () => {
    const window = single({ kind: "fixedWindow", name: "w", limit: 3, window: "1h" });
    window.run("reconcile", 0, 0, {
      observations: [{ remaining: undefined, limit: 5, resetAtMs: undefined }],
    });
    expect(window.run("peek", 59_999)).toMatchObject({ limit: 5, remaining: 5 });
    expect(window.run("peek", 60_000)).toMatchObject({ limit: 3, remaining: 3 });
  });
});

describe("sliding window", () => {
  const spec = fc.record({
    limit: fc.integer({ min: 1, max: 6 }),
    window: fc.integer({ min: 5, max: 200 }),
    slots: fc.integer({ min: 1, max: 10 }),
    arrivals: fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 3 })), {
      maxLength: 80,
    }),
  });

  it("never admits more than limit in any half-open span of one window", () => {
    fc.assert(
      fc.property(spec, ({ limit, window, slots, arrivals }) => {
        const precision = Math.max(1, Math.floor(window / slots));
        const sw = single({ kind: "slidingWindow", name: "s", limit, window, precision });
        const admitted: number[] = [];
        let t = 0;
        for (const [gap, cost] of arrivals) {
          t += gap;
          if (sw.run("take", t, cost).allowed) for (let i = 0; i < cost; i++) admitted.push(t);
        }
        // Brute force: every span [a, a + window) starting at an admission.
        for (const start of admitted) {
          const inSpan = admitted.filter((x) => x >= start && x < start + window).length;
          expect(inSpan).toBeLessThanOrEqual(limit);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("stops counting an admission between window and window + precision after it", () => {
    const sw = single({ kind: "slidingWindow", name: "s", limit: 1, window: 100, precision: 10 });
    sw.run("take", 1_005);
    expect(sw.run("take", 1_105).allowed).toBe(false);
    expect(sw.run("take", 1_109).allowed).toBe(false);
    expect(sw.run("take", 1_110).allowed).toBe(true);
  });
});

describe("calendar days in a time zone", () => {
  const day = (zone: string, isoDate: string) => {
    const [y, m, d] = isoDate.split("-").map(Number) as [number, number, number];
    const dayNumber = Date.UTC(y, m - 1, d) / 86_400_000;
    return (localMidnight(zone, dayNumber + 1) - localMidnight(zone, dayNumber)) / 3_600_000;
  };

  it("gives New York a 23-hour day on 2026-03-08 and a 25-hour day on 2026-11-01", () => {
    expect(day("America/New_York", "2026-03-08")).toBe(23);
    expect(day("America/New_York", "2026-11-01")).toBe(25);
    expect(day("America/New_York", "2026-06-01")).toBe(24);
  });

  it("gives London a 25-hour day on 2026-10-25", () => {
    expect(day("Europe/London", "2026-10-25")).toBe(25);
  });

  it("starts a day whose midnight does not exist at its first instant (Santiago, 2026-09-06)", () => {
    const dayNumber = Date.UTC(2026, 8, 6) / 86_400_000;
    expect(new Date(localMidnight("America/Santiago", dayNumber)).toISOString()).toBe(
      "2026-09-06T04:00:00.000Z",
    );
  });

  it("hands stores consecutive window starts around the present", () => {
    const bounds = zoneWindowBounds("Asia/Kolkata", 1, Date.UTC(2026, 0, 1, 12));
    expect(bounds).toContain(Date.UTC(2025, 11, 31, 18, 30));
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]! - bounds[i - 1]!).toBe(86_400_000);
  });
});

describe("at the largest limits", () => {
  // Found by the extreme-values property: count + cost passed 2^53 and rounded, so a cost that
  // fits once the window's admissions leave read as one that never can.
  it("tells a sliding window's wait for a cost of 2^53 - 1 beside admissions it holds", () => {
    const max = Number.MAX_SAFE_INTEGER;
    const w = single({
      kind: "slidingWindow",
      name: "s",
      limit: max,
      window: 1_000,
      precision: 100,
    });
    expect(w.run("take", 10_000, 4).allowed).toBe(true);
    const refused = w.run("take", 10_000, max);
    expect([refused.allowed, refused.retryAfterMs]).toEqual([false, 1_100]);
  });
});
