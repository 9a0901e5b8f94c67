import { describe, expect, it } from "vitest";
import type { Policy } from "../../policy/schema.js";
import type { ConformanceContext } from "./context.js";

/** Refunds, reconcile (what a server reported) and reset. */
export function refundsReconcileReset(ctx: ConformanceContext): void {
  describe("refunds, reconcile and reset", () => {
    it("gives back a refunded cost, never above the limit", async (t) => {
      if (!ctx.supports("fixedWindow", "pool")) return t.skip();
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 3, window: "1h" },
        { kind: "pool", name: "p", capacity: 3, refill: { tokens: 1, every: "1h" } },
      ]);
      const model = ctx.model();
      await model.apply(f, { op: "take", cost: 3 });
      const back = await model.apply(f, { op: "refund", cost: 2 });
      expect(back.remaining(0)).toBe(2);
      expect(back.remaining(1)).toBe(2);
      const capped = await model.apply(f, { op: "refund", cost: 5 });
      expect(capped.remaining(0)).toBe(3);
      expect(capped.remaining(1)).toBe(3);
    });

    it("lowers what remains to a server's report and keeps a learned limit", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const f = ctx.limiter([{ kind: "fixedWindow", name: "w", limit: 10, window: "1h" }]);
      const model = ctx.model();
      await model.apply(f, {
        op: "reconcile",
        observations: [{ remaining: 4, limit: undefined, resetAtMs: undefined }],
      });
      expect((await model.apply(f, { op: "peek" })).remaining(0)).toBe(4);
      const learned = await model.apply(f, {
        op: "reconcile",
        observations: [{ remaining: undefined, limit: 5, resetAtMs: undefined }],
        learnedLimitTtlMs: 3_600_000,
      });
      expect(learned.limit(0)).toBe(5);
      expect(learned.remaining(0)).toBe(0); // 5 counted under a limit of 5
    });

    it("keeps refilling a token bucket that a server reports fuller than it is", async (t) => {
      if (!ctx.supports("tokenBucket")) return t.skip();
      const f = ctx.limiter([
        { kind: "tokenBucket", name: "b", capacity: 1, refill: { tokens: 1, every: "200ms" } },
      ]);
      const model = ctx.model();
      expect((await model.apply(f, { op: "take", cost: 1 })).allowed).toBe(true);
      // `remaining` is an upper bound: 99 says nothing about a bucket holding less, and its reset
      // holds nothing back.
      await model.apply(f, {
        op: "reconcile",
        observations: [{ remaining: 99, limit: undefined, resetAtMs: ctx.time.now() + 60_000 }],
      });
      const next = await model.apply(f, { op: "take", cost: 1 });
      expect(next.allowed).toBe(false);
      expect(next.retryAfterMs(0)).toBeLessThanOrEqual(200);
    });

    it("refills a token bucket reported empty as of a reset already past from that reset", async (t) => {
      if (!ctx.supports("tokenBucket")) return t.skip();
      const f = ctx.limiter([
        { kind: "tokenBucket", name: "b", capacity: 2, refill: { tokens: 1, every: "100ms" } },
      ]);
      const model = ctx.model();
      expect((await model.apply(f, { op: "take", cost: 1 })).allowed).toBe(true);
      // Empty as of 40 ms ago: a token back 60 ms from now, not a full period from now.
      await model.apply(f, {
        op: "reconcile",
        observations: [{ remaining: 0, limit: undefined, resetAtMs: ctx.time.now() - 40 }],
      });
      const next = await model.apply(f, { op: "take", cost: 1 });
      expect(next.allowed).toBe(false);
      // A server's clock read from here is known to a few ms; refilling from now would be 100.
      const slackMs = ctx.mode === "server" ? 15 : 0;
      expect(next.retryAfterMs(0)).toBeGreaterThan(40 - slackMs);
      expect(next.retryAfterMs(0)).toBeLessThanOrEqual(60 + slackMs);
    });

    it("forgets a key on reset, leases included", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const leases = ctx.supports("concurrency");
      const policies: Policy[] = [{ kind: "fixedWindow", name: "w", limit: 2, window: "1h" }];
      if (leases) policies.push({ kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" });
      const f = ctx.limiter(policies);
      const model = ctx.model();
      const take = (leaseId: string, cost: number) =>
        model.apply(
          f,
          leases ? { op: "take", cost, acquire: true, leaseId } : { op: "take", cost },
        );
      expect((await take("a", 2)).allowed).toBe(true);
      expect((await take("b", 1)).allowed).toBe(false);
      await model.apply(f, { op: "reset" });
      expect((await take("c", 2)).allowed).toBe(true);
    });
  });
}
