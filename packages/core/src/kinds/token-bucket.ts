import type { CompiledTokenBucket } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Token bucket kept as what has been consumed, in integer token-milliseconds so every store
 * computes it exactly: a token is `refillEveryMs` units and the bucket wins back `refillTokens`
 * units per millisecond. `consumed` is the consumption at `consumedAtMs`, which may lie in the
 * future when a reconcile holds refill back until the server's reset. Consumption at
 * t >= consumedAtMs: max(0, consumed - (t - consumedAtMs) * refillTokens); what is left under a
 * limit is limit * refillEveryMs minus that, so a policy whose capacity changes keeps what was
 * used (5 -> 10 with 3 used leaves 7), and nothing about the stored state depends on the limit.
 * `everyMs` keeps the unit: a bucket whose refill period changes rescales what it consumed.
 * (capacity * refillEveryMs is validated to stay within 2^52, so every quantity, and every time
 * it yields, stays below 2^53: a quotient of whole numbers below 2^53 rounds to the right side
 * of every whole number, so Math.ceil of it is exact.)
 */
export interface TokenBucketState extends StateBase {
  /** Token-milliseconds consumed (tokens * refillEveryMs); 0: full. */
  consumed: number;
  /** Epoch ms at which `consumed` holds. */
  consumedAtMs: number;
  /** The refillEveryMs `consumed` is counted in (a token is that many of its units). */
  everyMs: number;
}

/** The reference math of the `tokenBucket` kind: continuous refill up to capacity. */
export const tokenBucket: KindMath<CompiledTokenBucket, TokenBucketState> = {
  load(stored, p, _limit, now, _bounds, reuse) {
    if (stored === undefined) return fullBucket(p, now);
    const s = reuse ? stored : { ...stored };
    if (s.everyMs !== p.refillEveryMs) rescale(s, p);
    if (s.consumedAtMs < now) {
      // A product beyond 2^53 rounds, but only when it exceeds `consumed`: the result is 0 either way.
      s.consumed = Math.max(0, s.consumed - (now - s.consumedAtMs) * p.refillTokens);
      s.consumedAtMs = now;
    }
    return s;
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    const excess = s.consumed - (limit - cost) * p.refillEveryMs;
    if (excess <= 0) return 0;
    return s.consumedAtMs - now + Math.ceil(excess / p.refillTokens);
  },
  charge(s, p, _limit, cost) {
    s.consumed += cost * p.refillEveryMs;
  },
  refund(s, p, _limit, cost) {
    s.consumed = Math.max(0, s.consumed - cost * p.refillEveryMs);
  },
  reconcile(s, p, limit, obs, now) {
    // `remaining` is an upper bound. A report at or below what is left binds now: the server
    // admits at most that many until its reset, so refill is held back until then. A report above
    // it leaves the bucket refilling at its own rate. A reset already past: the server's bucket
    // has refilled since then (compared first, so that no product exceeds what was used).
    if (obs.remaining === undefined || obs.remaining > limit) return;
    let used = (limit - obs.remaining) * p.refillEveryMs;
    if (obs.resetAtMs !== undefined && obs.resetAtMs < now) {
      if (now - obs.resetAtMs >= used / p.refillTokens) return;
      used -= (now - obs.resetAtMs) * p.refillTokens;
    }
    if (used < s.consumed) return;
    s.consumed = used;
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now && obs.resetAtMs > s.consumedAtMs) {
      s.consumedAtMs = obs.resetAtMs;
    }
  },
  remaining(s, p, limit) {
    return Math.max(0, limit - Math.ceil(s.consumed / p.refillEveryMs));
  },
  resetAt(s, p, _limit, now) {
    if (s.consumed <= 0) return Math.max(now, s.consumedAtMs);
    return s.consumedAtMs + Math.ceil(s.consumed / p.refillTokens);
  },
  isIdle(s, _p, _limit, now) {
    return s.consumed <= 0 && s.consumedAtMs <= now;
  },
};

// The rare paths of `load`, apart from it: the take of a held bucket stays small enough for V8 to
// inline into the memory store's loop.

function fullBucket(p: CompiledTokenBucket, now: number): TokenBucketState {
  return {
    consumed: 0,
    consumedAtMs: now,
    everyMs: p.refillEveryMs,
    learnedLimit: 0,
    learnedLimitUntilMs: 0,
    dueMs: 0,
  };
}

/**
 * Counted in another refill period (the policy changed): in this one, a token begun counts as
 * consumed whole.
 */
function rescale(s: TokenBucketState, p: CompiledTokenBucket): void {
  s.consumed = Math.ceil(s.consumed / s.everyMs) * p.refillEveryMs;
  s.everyMs = p.refillEveryMs;
}
