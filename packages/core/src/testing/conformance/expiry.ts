import { describe, expect, it } from "vitest";
import type { Policy } from "../../policy/schema.js";
import { policyAnswer, type StoreAnswer } from "../../store/answer.js";
import type { ConformanceContext } from "./context.js";

/** Time passing: windows end, leases expire, state goes back to default. */
export function expiry(ctx: ConformanceContext): void {
  describe("expiry", () => {
    it("answers for a key back at its default exactly as for a fresh key", async () => {
      const all: Policy[] = [
        { kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: "1h" } },
        { kind: "pool", name: "p", capacity: 3, refill: { tokens: 1, every: "1h" } },
        { kind: "fixedWindow", name: "f", limit: 3, window: "1h", align: "firstUse" },
        { kind: "slidingWindow", name: "s", limit: 3, window: "1h" },
        { kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" },
      ];
      const policies = all.filter((p) => ctx.supports(p.kind));
      const leases = ctx.supports("concurrency");
      const f = ctx.limiter(policies);
      const model = ctx.model();
      await model.apply(
        f,
        leases ? { op: "take", cost: 2, acquire: true, leaseId: "a" } : { op: "take", cost: 2 },
        "used",
      );
      if (leases) await model.apply(f, { op: "release", leaseId: "a" }, "used");
      await model.apply(f, { op: "refund", cost: 2 }, "used");
      const back = await model.apply(f, { op: "peek" }, "used");
      const never = await model.apply(f, { op: "peek" }, "fresh");
      // Equal but for the clock (a server clock moves between the two calls).
      const clockFree = (a: StoreAnswer) => {
        const out: unknown[] = [a.allowed, a.leaseExpiresAtMs];
        for (let i = 0; i < a.policyCount; i++) {
          const p = policyAnswer(a, i);
          out.push({ ...p, resetAtMs: p.resetAtMs === a.nowMs ? "now" : p.resetAtMs });
        }
        return out;
      };
      expect(clockFree(back)).toEqual(clockFree(never));
      for (let i = 0; i < policies.length; i++) {
        expect(back.remaining(i)).toBe(back.limit(i));
        expect(back.resetAtMs(i)).toBe(back.nowMs); // already full
      }
    });

    it("admits again once a fixed window has ended", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const window = Math.max(1, Math.floor(ctx.timeScaleMs / 2));
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 1, window, align: "firstUse" },
      ]);
      const model = ctx.model();
      expect((await model.apply(f, { op: "take", cost: 1 })).allowed).toBe(true);
      expect((await model.apply(f, { op: "take", cost: 1 })).allowed).toBe(false);
      await ctx.time.pass(ctx.timeScaleMs);
      expect((await model.apply(f, { op: "take", cost: 1 })).allowed).toBe(true);
    });

    it("frees the slot of a lease left to expire and refuses to renew it", async (t) => {
      if (!ctx.supports("concurrency")) return t.skip();
      // Half a "time passes" step, so real sleeps in server-clock mode outlast it with margin.
      const ttl = Math.max(1, Math.floor(ctx.timeScaleMs / 2));
      const f = ctx.limiter([{ kind: "concurrency", name: "c", limit: 1, leaseTtl: ttl }]);
      const model = ctx.model();
      const acquire = (leaseId: string) =>
        model.apply(f, { op: "take", cost: 1, acquire: true, leaseId });
      const held = await acquire("a");
      expect(held.allowed).toBe(true);
      expect(held.leaseExpiresAtMs).toBe(held.nowMs + ttl);
      await ctx.time.pass(ctx.timeScaleMs);
      expect((await acquire("b")).allowed).toBe(true);
      expect((await model.apply(f, { op: "renew", leaseId: "a" })).allowed).toBe(false);
    });
  });
}
