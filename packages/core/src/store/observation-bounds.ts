import type { KindObservation } from "../kinds/types.js";
import type { CompiledPolicy } from "../policy/compile.js";
import { MAX_REFILL } from "../policy/refill-bounds.js";

/**
 * The largest limit `p` may be held to, learned limits included: what the schema accepts as its
 * capacity or limit given the rest of it (a bucket's or pool's refill). A server reporting more is
 * read as reporting this much (see `boundObservation`).
 */
export function largestLimit(p: CompiledPolicy): number {
  switch (p.kind) {
    case "tokenBucket":
      return Math.max(1, Math.floor(MAX_REFILL / p.refillEveryMs));
    case "pool":
      return Math.min(
        Number.MAX_SAFE_INTEGER,
        Math.max(1, Math.floor(MAX_REFILL / p.refillEveryMs)) * p.refillTokens,
      );
    default:
      return Number.MAX_SAFE_INTEGER;
  }
}

/**
 * A server's report held to what every store computes exactly: a limit to `largestLimit(p)`,
 * remaining to 2^53 - 1 (no limit is larger, so it still lowers nothing), a reset time to 2^52 (a
 * reset after the year 144,000 reads as then). Stores receive observations bounded so.
 */
export function boundObservation(p: CompiledPolicy, o: KindObservation): KindObservation {
  return {
    remaining:
      o.remaining === undefined ? undefined : Math.min(o.remaining, Number.MAX_SAFE_INTEGER),
    limit: o.limit === undefined ? undefined : Math.min(o.limit, largestLimit(p)),
    resetAtMs: o.resetAtMs === undefined ? undefined : Math.min(o.resetAtMs, MAX_REFILL),
  };
}
