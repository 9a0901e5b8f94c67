import { afterAll, beforeAll, describe } from "vitest";
import type { Store } from "../../store/contract.js";
import { ConformanceContext, type ConformanceGroup } from "./context.js";
import { expiry } from "./expiry.js";
import { leases } from "./leases.js";
import { policyChanges } from "./policy-changes.js";
import { reference } from "./reference.js";
import { refundsReconcileReset } from "./refunds-reconcile-reset.js";
import { takesAndPeeks } from "./takes-and-peeks.js";
import { timeZones } from "./time-zones.js";

/** Options of `storeConformanceSuite`: how to build and close the store under test. */
export interface StoreConformanceOptions {
  /** Used in test titles. */
  name: string;
  /**
   * Builds the store under test. `clock` is the suite's fake clock: a store whose
   * `capabilities.clock` is "injectable" must use it; a "server" store ignores it.
   */
  makeStore(ctx: { clock: () => number }): Store | Promise<Store>;
  /** Closes a store the suite built (default: `store.close?.()`). */
  closeStore?(store: Store): void | Promise<void>;
  /** fast-check runs per property (default 100). */
  numRuns?: number;
  /** Server-clock mode: longest real sleep of one "time passes" step (default 40 ms). */
  timeScaleMs?: number;
}

/** A Sunday in March 2026, days before New York's DST change: zoned windows get exercised. */
const FAKE_EPOCH = Date.UTC(2026, 2, 7, 12, 0, 0);

/**
 * Every group, in the order they run. A group's tests skip themselves where the store's
 * capabilities say it cannot take part (`kinds` without `concurrency`: no lease tests; a server
 * clock: no jumps across a DST change).
 */
export const CONFORMANCE_GROUPS: readonly ConformanceGroup[] = [
  "reference",
  "takesAndPeeks",
  "refundsReconcileReset",
  "policyChanges",
  "leases",
  "timeZones",
  "expiry",
];

const GROUPS: Record<ConformanceGroup, (ctx: ConformanceContext) => void> = {
  reference,
  takesAndPeeks,
  refundsReconcileReset,
  policyChanges,
  leases,
  timeZones,
  expiry,
};

/** The conformance suite every store runs: registers vitest tests, one describe per group. */
export function storeConformanceSuite(options: StoreConformanceOptions): void {
  const ctx = new ConformanceContext(
    options.name,
    options.numRuns ?? 100,
    options.timeScaleMs ?? 40,
    FAKE_EPOCH,
  );
  describe(`${options.name} store conformance`, () => {
    beforeAll(async () => {
      ctx.store = await options.makeStore({ clock: () => ctx.fakeNow });
      ctx.mode = ctx.store.capabilities.clock;
      await ctx.learnServerClock();
    });
    afterAll(async () => {
      await options.closeStore?.(ctx.store);
    });
    for (const group of CONFORMANCE_GROUPS) GROUPS[group](ctx);
  });
}
