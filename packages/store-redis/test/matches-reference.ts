import type { Policy } from "@sluice/core";
import type { CompiledPolicy } from "@sluice/core/store";
import { compareWithReference, type WindowBoundsFn } from "@sluice/core/testing";
import type { RedisStore } from "../src/index.js";

/** Short durations so that refills, window ends and lease expiry happen within a run. */
const FAST_POLICIES: readonly Policy[] = [
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: 40 } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 2, every: 60 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: 100 },
  { kind: "fixedWindow", name: "first", limit: 3, window: 80, align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 6, window: 120, precision: 20 },
  { kind: "concurrency", name: "slots", limit: 2, leaseTtl: 90 },
];

/** A calendar window handed explicit bounds (as the engine does for time zones). */
const ZONED: readonly Policy[] = [
  { kind: "fixedWindow", name: "day", limit: 4, window: "1d", timeZone: "Europe/London" },
  { kind: "tokenBucket", name: "tb", capacity: 3, refill: { tokens: 1, every: 50 } },
];

/**
 * Bounds that end within a run: calendar windows of 60, 90 and 250 ms from the first request
 * of each limiter, inside a day on either side (the script walks the list to the one around now).
 */
function shortBounds(): WindowBoundsFn {
  const firstSeen = new WeakMap<readonly CompiledPolicy[], number>();
  return (policies, nowMs) => {
    if (!policies.some((p) => p.kind === "fixedWindow" && p.timeZone !== undefined)) {
      return undefined;
    }
    let t0 = firstSeen.get(policies);
    if (t0 === undefined) {
      t0 = nowMs;
      firstSeen.set(policies, t0);
    }
    const day = 86_400_000;
    const bounds = [t0 - day, t0 + 60, t0 + 150, t0 + 400, t0 + day];
    return policies.map((p) =>
      p.kind === "fixedWindow" && p.timeZone !== undefined ? bounds : undefined,
    );
  };
}

/**
 * Random op sequences on the store's own layouts through core's comparison harness: every
 * answer must equal evaluate() at the store's reported clock. One run per seed (the first seeds
 * fast-check), up to `steps` commands each.
 */
export async function runAgainstReference(
  store: RedisStore,
  partitionBase: string,
  seeds: readonly number[],
  steps: number,
): Promise<void> {
  await compareWithReference({
    store,
    limiters: [FAST_POLICIES, ZONED],
    maxPassMs: 35,
    windowBounds: shortBounds(),
    numRuns: seeds.length,
    maxCommands: steps,
    // Each run gets keys of its own (the harness's unique prefix per run).
    ...(seeds[0] === undefined ? {} : { seed: seeds[0] + partitionBase.length }),
  });
}
