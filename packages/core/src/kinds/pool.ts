import type { CompiledPool } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Replenishing pool kept as what has been consumed: `consumed` whole tokens, won back by
 * `refillTokens` per `refillEveryMs`, in whole steps counted from `anchorMs` (the moment it first
 * dropped below capacity, advanced by the steps already applied). `anchorMs` is 0 while nothing
 * is consumed. What is left under a limit is the limit minus `consumed`, so a policy whose
 * capacity changes keeps what was used, and nothing about the stored state depends on the limit.
 * (ceil(capacity / refillTokens) * refillEveryMs, a refill from empty, is validated to stay within
 * 2^52, so every time it yields stays below 2^53.)
 */
export interface PoolState extends StateBase {
  /** Whole tokens consumed; 0: full. */
  consumed: number;
  /** Epoch ms the refill steps are counted from; 0 while nothing is consumed. */
  anchorMs: number;
  /** The refillEveryMs the steps since `anchorMs` are counted in. */
  everyMs: number;
}

/** The reference math of the `pool` kind: a replenishing pool, refilled in whole steps. */
export const pool: KindMath<CompiledPool, PoolState> = {
  load(stored, p, _limit, now, _bounds, reuse) {
    if (stored === undefined) {
      return {
        consumed: 0,
        anchorMs: 0,
        everyMs: p.refillEveryMs,
        learnedLimit: 0,
        learnedLimitUntilMs: 0,
        dueMs: 0,
      };
    }
    const s = reuse ? stored : { ...stored };
    // Steps earned under an earlier refill period (the policy changed) are kept; the period in
    // force counts on from the last of them.
    if (s.everyMs !== p.refillEveryMs) {
      refillSteps(s, p.refillTokens, s.everyMs, now);
      s.everyMs = p.refillEveryMs;
    }
    refillSteps(s, p.refillTokens, p.refillEveryMs, now);
    if (s.consumed <= 0) {
      s.consumed = 0;
      s.anchorMs = 0;
    }
    return s;
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    const excess = s.consumed - (limit - cost);
    if (excess <= 0) return 0;
    return s.anchorMs + Math.ceil(excess / p.refillTokens) * p.refillEveryMs - now;
  },
  charge(s, _p, _limit, cost, now) {
    if (s.consumed <= 0) s.anchorMs = now;
    s.consumed += cost;
  },
  refund(s, _p, _limit, cost) {
    s.consumed = Math.max(0, s.consumed - cost);
    if (s.consumed <= 0) s.anchorMs = 0;
  },
  reconcile(s, p, limit, obs, now) {
    if (obs.remaining !== undefined && limit - obs.remaining > s.consumed) {
      if (s.consumed <= 0) s.anchorMs = now;
      s.consumed = limit - obs.remaining;
    }
    // No step before the server's reset.
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now && s.consumed > 0) {
      s.anchorMs = Math.max(s.anchorMs, obs.resetAtMs - p.refillEveryMs);
    }
  },
  remaining(s, _p, limit) {
    return Math.max(0, limit - s.consumed);
  },
  resetAt(s, p, _limit, now) {
    if (s.consumed <= 0) return now;
    return s.anchorMs + Math.ceil(s.consumed / p.refillTokens) * p.refillEveryMs;
  },
  isIdle(s) {
    return s.consumed <= 0;
  },
};

/** Applies the whole steps of `everyMs` since the anchor. */
function refillSteps(s: PoolState, tokens: number, everyMs: number, now: number): void {
  if (s.consumed <= 0 || now < s.anchorMs) return;
  const steps = Math.floor((now - s.anchorMs) / everyMs);
  // A product beyond 2^53 rounds, but only when it exceeds `consumed`: all is back either way.
  s.consumed -= steps * tokens;
  s.anchorMs += steps * everyMs;
}
