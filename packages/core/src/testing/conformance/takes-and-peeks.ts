import { describe, expect, it } from "vitest";
import { readAnswer } from "../../store/answer.js";
import { admitted, burst, type ConformanceContext } from "./context.js";

/** Takes and peeks: exact under concurrency, all-or-nothing, keys kept apart. */
export function takesAndPeeks(ctx: ConformanceContext): void {
  describe("takes and peeks", () => {
    it("admits exactly a fixed window's limit when 200 decisions arrive at once", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const f = ctx.limiter([{ kind: "fixedWindow", name: "w", limit: 50, window: "1h" }]);
      expect(admitted(await burst(ctx, f, 200))).toBe(50);
    });

    it("admits exactly a pool's capacity when 200 decisions arrive at once", async (t) => {
      if (!ctx.supports("pool")) return t.skip();
      const f = ctx.limiter([
        { kind: "pool", name: "p", capacity: 30, refill: { tokens: 1, every: "1h" } },
      ]);
      expect(admitted(await burst(ctx, f, 200))).toBe(30);
    });

    it("admits exactly a token bucket's capacity when 200 decisions arrive at once", async (t) => {
      if (!ctx.supports("tokenBucket")) return t.skip();
      const f = ctx.limiter([
        { kind: "tokenBucket", name: "b", capacity: 20, refill: { tokens: 1, every: "1h" } },
      ]);
      expect(admitted(await burst(ctx, f, 200))).toBe(20);
    });

    it("admits exactly a sliding window's limit when 200 decisions arrive at once", async (t) => {
      if (!ctx.supports("slidingWindow")) return t.skip();
      const f = ctx.limiter([{ kind: "slidingWindow", name: "s", limit: 40, window: "1h" }]);
      expect(admitted(await burst(ctx, f, 200))).toBe(40);
    });

    it("charges nothing to the other policies when one refuses", async (t) => {
      if (!ctx.supports("fixedWindow", "tokenBucket")) return t.skip();
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 10, window: "1h" },
        { kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: "1h" } },
      ]);
      const key = f.plan.resolve("k");
      const results = await Promise.all(
        Array.from({ length: 20 }, () => ctx.store.execute(f.build(key, { op: "take", cost: 1 }))),
      );
      expect(results.filter((r) => readAnswer(r, 2).allowed)).toHaveLength(3);
      const peek = readAnswer(await ctx.store.execute(f.build(key, { op: "peek" })), 2);
      expect(peek.remaining(0)).toBe(7); // the window was charged 3 times, not 20
      expect(peek.remaining(1)).toBe(0);
    });

    it("refuses a cost above a limit as never fitting and charges nothing", async (t) => {
      if (!ctx.supports("fixedWindow", "pool")) return t.skip();
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 10, window: "1h" },
        { kind: "pool", name: "p", capacity: 3, refill: { tokens: 1, every: "1h" } },
      ]);
      const model = ctx.model();
      const refused = await model.apply(f, { op: "take", cost: 4 });
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs(1)).toBe(-1);
      expect(refused.blocked(1)).toBe(true);
      expect(refused.blocked(0)).toBe(false);
      expect(refused.remaining(0)).toBe(10);
      expect(refused.remaining(1)).toBe(3);
    });

    it("peeks without charging anything", async (t) => {
      if (!ctx.supports("fixedWindow", "tokenBucket")) return t.skip();
      const f = ctx.limiter([
        { kind: "fixedWindow", name: "w", limit: 2, window: "1h" },
        { kind: "tokenBucket", name: "b", capacity: 2, refill: { tokens: 1, every: "1h" } },
      ]);
      const model = ctx.model();
      for (let i = 0; i < 3; i++) expect((await model.apply(f, { op: "peek" })).allowed).toBe(true);
      expect((await model.apply(f, { op: "take", cost: 2 })).allowed).toBe(true);
      const peek = await model.apply(f, { op: "peek" });
      expect(peek.allowed).toBe(false);
      expect(peek.remaining(0)).toBe(0);
    });

    it("keeps concurrent decisions on different keys apart", async (t) => {
      if (!ctx.supports("fixedWindow")) return t.skip();
      const f = ctx.limiter([{ kind: "fixedWindow", name: "w", limit: 3, window: "1h" }]);
      const keys = ["a", "a:b", "a%3Ab", "{a}", "用户"].map((k) => f.plan.resolve(k));
      const results = await Promise.all(
        keys.flatMap((key) =>
          Array.from({ length: 5 }, () => ctx.store.execute(f.build(key, { op: "take", cost: 1 }))),
        ),
      );
      for (let k = 0; k < keys.length; k++) {
        const own = results.slice(k * 5, k * 5 + 5).map((r) => readAnswer(r, 1));
        expect(admitted(own)).toBe(3);
      }
    });
  });
}
