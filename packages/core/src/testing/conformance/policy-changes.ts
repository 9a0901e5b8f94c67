import { describe, expect, it } from "vitest";
import type { Policy, PolicyKind } from "../../policy/schema.js";
import type { ConformanceContext } from "./context.js";

/** One policy of each kind at a given capacity or limit; long periods, so nothing comes back. */
function policyOf(kind: PolicyKind, size: number): Policy {
  switch (kind) {
    case "tokenBucket":
      return { kind, name: "p", capacity: size, refill: { tokens: 1, every: "1h" } };
    case "pool":
      return { kind, name: "p", capacity: size, refill: { tokens: 1, every: "1h" } };
    case "fixedWindow":
      return { kind, name: "p", limit: size, window: "1h", align: "firstUse" };
    case "slidingWindow":
      return { kind, name: "p", limit: size, window: "1h", precision: "1m" };
    case "concurrency":
      return { kind, name: "p", limit: size, leaseTtl: "1h" };
  }
}

const KINDS: readonly PolicyKind[] = [
  "tokenBucket",
  "pool",
  "fixedWindow",
  "slidingWindow",
  "concurrency",
];

/** A policy that keeps its name across a reload keeps what was consumed under it. */
export function policyChanges(ctx: ConformanceContext): void {
  describe("policy changes", () => {
    for (const kind of KINDS) {
      it(`keeps consumption when a policy's capacity changes (${kind})`, async (t) => {
        if (!ctx.supports(kind)) return t.skip();
        const [five, ten, two] = ctx.limiterVersions(
          [policyOf(kind, 5)],
          [policyOf(kind, 10)],
          [policyOf(kind, 2)],
        );
        const model = ctx.model();
        // 3 used: three leases of a concurrency policy, a cost of 3 for the others.
        if (kind === "concurrency") {
          for (const leaseId of ["a", "b", "c"]) {
            await model.apply(five!, { op: "take", cost: 1, acquire: true, leaseId });
          }
        } else {
          expect((await model.apply(five!, { op: "take", cost: 3 })).allowed).toBe(true);
        }
        const raised = await model.apply(ten!, { op: "peek" });
        expect([raised.limit(0), raised.remaining(0)]).toEqual([10, 7]);
        // Used under the raised limit, and still counted once it is lowered again.
        if (kind === "concurrency") {
          await model.apply(ten!, { op: "take", cost: 1, acquire: true, leaseId: "d" });
        } else {
          expect((await model.apply(ten!, { op: "take", cost: 1 })).remaining(0)).toBe(6);
        }
        const back = await model.apply(five!, { op: "peek" });
        expect([back.limit(0), back.remaining(0)]).toEqual([5, 1]);
        // Lowered below what is used: nothing left, and nothing admitted.
        const lowered = await model.apply(
          two!,
          kind === "concurrency"
            ? { op: "take", cost: 1, acquire: true, leaseId: "e" }
            : { op: "peek" },
        );
        expect([lowered.limit(0), lowered.remaining(0), lowered.allowed]).toEqual([2, 0, false]);
      });
    }

    it("keeps a bucket's consumption when its refill period changes", async (t) => {
      if (!ctx.supports("tokenBucket")) return t.skip();
      const bucket = (every: string): Policy => ({
        kind: "tokenBucket",
        name: "b",
        capacity: 5,
        refill: { tokens: 1, every },
      });
      const [hourly, twoHourly] = ctx.limiterVersions([bucket("1h")], [bucket("2h")]);
      const model = ctx.model();
      await model.apply(hourly!, { op: "take", cost: 3 });
      expect((await model.apply(twoHourly!, { op: "peek" })).remaining(0)).toBe(2);
      // Back to the first period: still 3 consumed, nothing lost or gained by the round trip.
      expect((await model.apply(hourly!, { op: "peek" })).remaining(0)).toBe(2);
    });

    it("keeps the steps a pool earned when its refill period changes", async (t) => {
      if (!ctx.supports("pool") || ctx.mode !== "injectable") return t.skip();
      const pool = (every: string): Policy => ({
        kind: "pool",
        name: "p",
        capacity: 5,
        refill: { tokens: 1, every },
      });
      const [hourly, daily] = ctx.limiterVersions([pool("1h")], [pool("1d")]);
      const model = ctx.model();
      await model.apply(hourly!, { op: "take", cost: 3 });
      await ctx.time.pass(90 * 60_000);
      // One step earned in the first hour; the daily period counts on from it.
      const after = await model.apply(daily!, { op: "peek" });
      expect([after.remaining(0), after.resetAtMs(0) - ctx.time.now()]).toEqual([
        3,
        2 * 86_400_000 - 30 * 60_000,
      ]);
    });
  });
}
