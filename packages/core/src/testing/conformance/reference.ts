import fc from "fast-check";
import { describe, it } from "vitest";
import { jumpNearOffsetChange, runScenario, uniquePrefix } from "../run.js";
import { scenarioArb } from "../scenario.js";
import type { ConformanceContext } from "./context.js";

/** Random sequences of every operation, each answer checked against the reference math. */
export function reference(ctx: ConformanceContext): void {
  describe("reference math", () => {
    it("agrees with the reference math on random sequences of every operation", async () => {
      const long = ctx.mode === "injectable";
      const arb = scenarioArb({
        maxPassMs: long ? 300 : ctx.timeScaleMs,
        longTime: long,
        kinds: ctx.store.capabilities.kinds,
      });
      await fc.assert(
        fc.asyncProperty(arb, async (scenario) => {
          if (long) await jumpNearOffsetChange(scenario, ctx.time);
          await runScenario(ctx.store, scenario, ctx.time, uniquePrefix(ctx.name));
        }),
        { numRuns: long ? ctx.numRuns : Math.max(1, Math.ceil(ctx.numRuns / 4)) },
      );
    }, 600_000);

    it("keeps the order of decisions issued together, key by key", async () => {
      const long = ctx.mode === "injectable";
      const arb = scenarioArb({
        maxPassMs: long ? 300 : ctx.timeScaleMs,
        longTime: false,
        kinds: ctx.store.capabilities.kinds,
      });
      await fc.assert(
        fc.asyncProperty(arb, async (scenario) => {
          await runScenario(ctx.store, scenario, ctx.time, uniquePrefix(ctx.name), {
            concurrent: true,
          });
        }),
        { numRuns: Math.max(1, Math.ceil(ctx.numRuns / (long ? 4 : 8))) },
      );
    }, 600_000);
  });
}
