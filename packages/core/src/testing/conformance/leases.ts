import { describe, expect, it } from "vitest";
import { admitted, burst, type ConformanceContext } from "./context.js";

/** Concurrency leases: acquire, release, renew. Off for a store without `concurrency`. */
export function leases(ctx: ConformanceContext): void {
  describe("leases", () => {
    it("grants exactly `limit` leases when 40 acquires arrive at once", async (t) => {
      if (!ctx.supports("concurrency")) return t.skip();
      const f = ctx.limiter([{ kind: "concurrency", name: "c", limit: 5, leaseTtl: "1h" }]);
      expect(admitted(await burst(ctx, f, 40, true))).toBe(5);
    });

    it("frees a slot on release and refuses to renew a released lease", async (t) => {
      if (!ctx.supports("concurrency")) return t.skip();
      const f = ctx.limiter([{ kind: "concurrency", name: "c", limit: 1, leaseTtl: "1h" }]);
      const model = ctx.model();
      const acquire = (leaseId: string) =>
        model.apply(f, { op: "take", cost: 1, acquire: true, leaseId });
      expect((await acquire("a")).allowed).toBe(true);
      expect((await acquire("b")).allowed).toBe(false);
      expect((await model.apply(f, { op: "renew", leaseId: "a" })).allowed).toBe(true);
      await model.apply(f, { op: "release", leaseId: "a" });
      await model.apply(f, { op: "release", leaseId: "a" }, "k", "release a again");
      expect((await model.apply(f, { op: "renew", leaseId: "a" })).allowed).toBe(false);
      expect((await acquire("b")).allowed).toBe(true);
    });

    it("renews nothing for a lease it never granted", async (t) => {
      if (!ctx.supports("concurrency")) return t.skip();
      const f = ctx.limiter([{ kind: "concurrency", name: "c", limit: 2, leaseTtl: "1h" }]);
      const r = await ctx.model().apply(f, { op: "renew", leaseId: "ghost" });
      expect(r.allowed).toBe(false);
      expect(r.leaseExpiresAtMs).toBe(0);
    });

    it("leaves slots alone on a plain take and reports free slots", async (t) => {
      if (!ctx.supports("concurrency", "fixedWindow")) return t.skip();
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 5, window: "1h" },
        { kind: "concurrency", name: "c", limit: 2, leaseTtl: "1h" },
      ]);
      const model = ctx.model();
      await model.apply(f, { op: "take", cost: 1, acquire: true, leaseId: "a" });
      const plain = await model.apply(f, { op: "take", cost: 1 });
      expect(plain.allowed).toBe(true);
      expect(plain.remaining(1)).toBe(1);
      expect(plain.leaseExpiresAtMs).toBe(0);
    });
  });
}
