import {
  type CompiledPolicy,
  compilePolicies,
  type StoreOp,
  type StoreRequest,
} from "@sluice/core/store";
import { expect } from "vitest";
import type { RedisStore } from "../src/index.js";
import { keysFor, Model, request, sleep } from "./helpers.js";

/** Short durations so that refills, window ends and lease expiry happen within a run. */
export const FAST_POLICIES: readonly CompiledPolicy[] = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: 40 } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 2, every: 60 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: 100 },
  { kind: "fixedWindow", name: "first", limit: 3, window: 80, align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 6, window: 120, precision: 20 },
  { kind: "concurrency", name: "slots", limit: 2, leaseTtl: 90 },
]);

/** A calendar window handed explicit bounds (as the engine does for time zones). */
const ZONED: readonly CompiledPolicy[] = compilePolicies([
  { kind: "fixedWindow", name: "day", limit: 4, window: "1d", timeZone: "Europe/London" },
  { kind: "tokenBucket", name: "tb", capacity: 3, refill: { tokens: 1, every: 50 } },
]);

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OPS: StoreOp[] = [
  "take",
  "take",
  "take",
  "take",
  "peek",
  "refund",
  "reconcile",
  "release",
  "renew",
  "reset",
];

/** Random op sequences; every result must equal evaluate() at the store's reported clock. */
export async function runAgainstReference(
  store: RedisStore,
  partitionBase: string,
  seeds: readonly number[],
  steps: number,
): Promise<void> {
  for (const seed of seeds) {
    const rand = rng(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const zoned = rand() < 0.3;
    const policies = zoned ? ZONED : FAST_POLICIES;
    const keys = keysFor(policies, `${partitionBase}-${seed}`);
    const model = new Model();
    const leases = ["a", "b", "c"];
    const t0 = Date.now();
    const bounds = zoned
      ? [[t0 - 86_400_000, t0 + 60, t0 + 150, t0 + 400, t0 + 86_400_000], undefined]
      : undefined;
    const log: string[] = [];
    for (let step = 0; step < steps; step++) {
      const op = pick(OPS);
      const n = policies.length;
      let req: StoreRequest;
      const common = bounds === undefined ? {} : { windowBounds: bounds };
      switch (op) {
        case "take": {
          const acquire = rand() < 0.4;
          req = request(policies, keys, op, {
            ...common,
            cost: pick([0, 1, 1, 1, 2, 3, 7]),
            acquire,
            ...(acquire ? { leaseId: pick(leases) } : {}),
          });
          break;
        }
        case "refund":
          req = request(policies, keys, op, { ...common, cost: pick([1, 2, 5]) });
          break;
        case "reconcile": {
          const obs = Array.from({ length: n }, () =>
            rand() < 0.5
              ? {
                  remaining: rand() < 0.7 ? Math.floor(rand() * 6) : undefined,
                  limit: rand() < 0.3 ? 1 + Math.floor(rand() * 8) : undefined,
                  resetAtMs: rand() < 0.4 ? Date.now() + Math.floor(rand() * 200) - 20 : undefined,
                }
              : undefined,
          );
          req = request(policies, keys, op, {
            ...common,
            observations: obs,
            learnedLimitTtlMs: pick([50, 150, 10_000]),
          });
          break;
        }
        case "release":
        case "renew":
          req = request(policies, keys, op, {
            ...common,
            leaseId: pick(leases),
            ...(op === "renew" && rand() < 0.5 ? { leaseTtlMs: pick([10, 60, 200]) } : {}),
          });
          break;
        default:
          req = request(policies, keys, op, common);
      }
      log.push(
        `${op} cost=${req.cost} acquire=${req.acquire} lease=${req.leaseId} ttl=${req.leaseTtlMs} obs=${JSON.stringify(req.observations)}`,
      );
      const actual = [...(await store.execute(req))];
      const expected = model.check(req, actual);
      expect(actual, `seed ${seed} step ${step}:\n${log.slice(-6).join("\n")}`).toEqual(expected);
      if (rand() < 0.25) await sleep(Math.floor(rand() * 35));
    }
  }
}
