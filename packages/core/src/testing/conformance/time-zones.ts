import { describe, expect, it } from "vitest";
import { localDay, localMidnight } from "../../time-zone.js";
import { nextOffsetChange } from "../dst.js";
import type { ConformanceContext } from "./context.js";

const HOUR_MS = 3_600_000;

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
  });
}
