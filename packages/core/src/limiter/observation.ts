import { invalidArgument } from "../errors.js";
import type { CompiledPolicy } from "../policy/compile.js";
import type { StoreObservation } from "../store/index.js";
import { boundObservation } from "../store/observation-bounds.js";

/** What a server reported about one of its limits (see `reconcile`). */
export interface Observation {
  /** Name of the limiter's policy the server's limit corresponds to. */
  policy: string;
  /**
   * The server admits at most this many more until `resetAtMs`; local state is lowered to it,
   * never raised.
   */
  remaining?: number;
  /**
   * The server's limit; replaces the configured one for this key until `learnedLimitTtlMs` passes.
   */
  limit?: number;
  /**
   * When the server's window resets (epoch ms on this process's clock, as
   * `parseRateLimitHeaders` gives it); on a fixed window, the current window ends then. A remote
   * store keeps time by its own clock: the limiter moves the reset onto it, so a host whose clock
   * is off changes nothing.
   */
  resetAtMs?: number;
}

function observedNumber(value: unknown, field: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw invalidArgument(`${field} must be a finite number >= ${min} (got ${String(value)})`);
  }
  return Math.floor(value);
}

/**
 * Validates observations and folds them into one per policy index (later fields win), or
 * undefined when none names a policy of the limiter. `ignore` hears of each unknown policy.
 */
export function observationsByPolicy(
  observations: Observation | readonly Observation[],
  index: ReadonlyMap<string, number>,
  policies: readonly CompiledPolicy[],
  ignore: (observation: Observation, reason: string) => void,
): (StoreObservation | undefined)[] | undefined {
  const many = Array.isArray(observations);
  const list: readonly unknown[] = many ? observations : [observations];
  let byPolicy: (StoreObservation | undefined)[] | undefined;
  list.forEach((raw, i) => {
    const field = many ? `observations[${i}]` : "observation";
    if (typeof raw !== "object" || raw === null)
      throw invalidArgument(`${field} must be an object`);
    const o = raw as Observation;
    if (typeof o.policy !== "string")
      throw invalidArgument(`${field}.policy must be a policy name`);
    const remaining = observedNumber(o.remaining, `${field}.remaining`, 0);
    const limit = observedNumber(o.limit, `${field}.limit`, 1);
    const resetAtMs = observedNumber(o.resetAtMs, `${field}.resetAtMs`, 0);
    const idx = index.get(o.policy);
    if (idx === undefined) {
      ignore(o, `the limiter has no policy named "${o.policy}"`);
      return;
    }
    byPolicy ??= new Array(policies.length).fill(undefined);
    const prev = byPolicy[idx];
    // Held to what every store computes exactly (a limit beyond what the policy may be, say).
    byPolicy[idx] = boundObservation(policies[idx]!, {
      remaining: remaining ?? prev?.remaining,
      limit: limit ?? prev?.limit,
      resetAtMs: resetAtMs ?? prev?.resetAtMs,
    });
  });
  return byPolicy;
}
