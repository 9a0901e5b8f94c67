import { describe, expect, it } from "vitest";
import { createLimiter } from "../../limiter/index.js";
import { localDay, localMidnight, zoneWindowBounds } from "../../time-zone.js";
import { nextOffsetChange } from "../dst.js";
import { uniquePrefix } from "../run.js";
import type { ConformanceContext } from "./context.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Calendar fixed windows in a time zone: the store windows by the bounds the engine passes. */
export function timeZones(ctx: ConformanceContext): void {
  describe("time zones", () => {
    it("ends a zoned day window at the next local midnight", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const zone = "Asia/Kolkata";
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "d", limit: 2, window: "1d", timeZone: zone },
      ]);
      const model = ctx.model();
      await model.apply(f, { op: "take", cost: 2 });
      const refused = await model.apply(f, { op: "take", cost: 1 });
      const end = localMidnight(zone, localDay(zone, refused.nowMs) + 1);
      expect(refused.allowed).toBe(false);
      expect(refused.resetAtMs(0)).toBe(end);
      expect(refused.retryAfterMs(0)).toBe(end - refused.nowMs);
    });

    it("windows by the bounds it is handed, not by epoch days", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      // Bounds around the store's clock that no epoch alignment would give: a window that
      // began a moment ago and lasts an hour and 7 ms.
      const start = ctx.time.now() - 1_000;
      const bounds = [start - 86_400_000, start, start + HOUR_MS + 7, start + 2 * HOUR_MS];
      const f = ctx.limiter(
        [{ kind: "fixedWindow", name: "d", limit: 1, window: "1d", timeZone: "Europe/London" }],
        () => [bounds],
      );
      const model = ctx.model();
      const taken = await model.apply(f, { op: "take", cost: 1 });
      expect(taken.resetAtMs(0)).toBe(start + HOUR_MS + 7);
    });

    it("lasts 23 or 25 hours across a daylight-saving change", async (t) => {
      if (!ctx.supports("fixedWindow") || ctx.mode !== "injectable") return t.skip();
      const zone = "America/New_York";
      const change = nextOffsetChange(zone, ctx.fakeNow);
      if (change === undefined) return t.skip();
      // Two hours into the local day that ends at `change` (the day of the change).
      const dayStart = localMidnight(zone, localDay(zone, change - 1));
      ctx.fakeNow = Math.max(ctx.fakeNow, dayStart + 2 * HOUR_MS);
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "d", limit: 1, window: "1d", timeZone: zone },
      ]);
      const model = ctx.model();
      const taken = await model.apply(f, { op: "take", cost: 1 });
      expect(taken.resetAtMs(0)).toBe(change);
      expect([23 * HOUR_MS, 25 * HOUR_MS]).toContain(change - dayStart);
    });

    it("asks for new bounds, charging nothing, when its clock is outside the bounds sent", async (t) => {
      if (!ctx.supports("fixedWindow", "tokenBucket")) return t.skip();
      const zone = "America/New_York";
      // Bounds around a present ten days before the store's, as a client whose clock is off sends.
      let skewMs = -10 * DAY_MS;
      const f = ctx.limiter(
        [
          { kind: "fixedWindow", name: "d", limit: 2, window: "1d", timeZone: zone },
          { kind: "tokenBucket", name: "b", capacity: 2, refill: { tokens: 1, every: "1h" } },
        ],
        (_policies, nowMs) => [zoneWindowBounds(zone, 1, nowMs + skewMs), undefined],
      );
      const model = ctx.model();
      for (const op of ["take", "peek", "refund"] as const) {
        const asked = await model.apply(f, { op, cost: op === "peek" ? 0 : 1 });
        expect(asked.boundsNeeded).toBe(true);
        expect(asked.allowed).toBe(false);
      }
      skewMs = 0;
      const taken = await model.apply(f, { op: "take", cost: 2 });
      expect(taken.boundsNeeded).toBe(false);
      expect(taken.allowed).toBe(true);
      expect([taken.remaining(0), taken.remaining(1)]).toEqual([0, 0]);
    });

    it("admits no more than a zoned day's limit when the store clock is days from the client's", async (t) => {
      if (!ctx.supports("fixedWindow") || ctx.mode !== "injectable") return t.skip();
      const zone = "America/New_York";
      // The store's clock weeks from the client's Date.now (a test clock, a badly skewed host).
      if (Math.abs(ctx.fakeNow - Date.now()) < 8 * DAY_MS) ctx.fakeNow = Date.now() + 16 * DAY_MS;
      // 23:00 UTC: an hour before the UTC day ends, hours before New York's does.
      const lateUtcMs = (Math.floor(ctx.fakeNow / DAY_MS) + 1) * DAY_MS - HOUR_MS;
      ctx.fakeNow = lateUtcMs;
      const limiter = createLimiter({
        store: ctx.store,
        policies: [{ kind: "fixedWindow", name: "d", limit: 3, window: "1d", timeZone: zone }],
        prefix: uniquePrefix(ctx.name),
      });
      try {
        for (let i = 0; i < 3; i++) expect((await limiter.take("k")).allowed).toBe(true);
        expect((await limiter.take("k")).allowed).toBe(false);
        // 00:00:01 UTC: a new UTC day, the same New York day.
        ctx.fakeNow = lateUtcMs + HOUR_MS + 1_000;
        const later = await limiter.take("k");
        expect(later.allowed).toBe(false);
        expect(later.policies[0]!.resetAtMs).toBe(
          localMidnight(zone, localDay(zone, lateUtcMs) + 1),
        );
      } finally {
        limiter.close();
      }
    });
  });
}
