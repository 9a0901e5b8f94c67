import type { CompiledPool } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Replenishing pool: `level` whole tokens; below capacity it gains `refillTokens` per
 * `refillEveryMs`, in whole steps counted from `anchorMs` (the moment it first dropped below
 * capacity, advanced by the steps already applied). `anchorMs` is 0 while full.
 */
export interface PoolState extends StateBase {
  /** Whole tokens. */
  level: number;
  /** Epoch ms the refill steps are counted from; 0 while full. */
  anchorMs: number;
}

/** The reference math of the `pool` kind: a replenishing pool, refilled in whole steps. */
export const pool: KindMath<CompiledPool, PoolState> = {
  load(stored, p, limit, now, _bounds, reuse) {
    if (stored === undefined) {
      return { level: limit, anchorMs: 0, learnedLimit: 0, learnedLimitUntilMs: 0, dueMs: 0 };
    }
    // Whole steps advance in place without changing the meaning; capping at the limit in force
    // does change it (a later, higher limit would count those steps), so a read that is never
    // written back must not cap a reused object.
    const s = reuse && !caps(stored, p, limit, now) ? stored : { ...stored };
    if (s.level >= limit) {
      s.level = limit;
      s.anchorMs = 0;
      return s;
    }
    let level = s.level;
    let anchorMs = s.anchorMs;
    if (now >= anchorMs) {
      const steps = Math.floor((now - anchorMs) / p.refillEveryMs);
      level += steps * p.refillTokens;
      anchorMs += steps * p.refillEveryMs;
    }
    if (level >= limit) {
      level = limit;
      anchorMs = 0;
    }
    s.level = level;
    s.anchorMs = anchorMs;
    return s;
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    if (s.level >= cost) return 0;
    const steps = Math.ceil((cost - s.level) / p.refillTokens);
    return s.anchorMs + steps * p.refillEveryMs - now;
  },
  charge(s, _p, limit, cost, now) {
    if (s.level >= limit) s.anchorMs = now;
    s.level -= cost;
  },
  refund(s, _p, limit, cost) {
    s.level = Math.min(limit, s.level + cost);
    if (s.level >= limit) s.anchorMs = 0;
  },
  reconcile(s, p, limit, obs, now) {
    if (obs.remaining !== undefined && obs.remaining < s.level) {
      if (s.level >= limit) s.anchorMs = now;
      s.level = obs.remaining;
    }
    // No step before the server's reset.
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now && s.level < limit) {
      s.anchorMs = Math.max(s.anchorMs, obs.resetAtMs - p.refillEveryMs);
    }
  },
  remaining(s) {
    return s.level;
  },
  resetAt(s, p, limit, now) {
    if (s.level >= limit) return now;
    return s.anchorMs + Math.ceil((limit - s.level) / p.refillTokens) * p.refillEveryMs;
  },
  isIdle(s, _p, limit) {
    return s.level >= limit;
  },
  refillSpanMs(p) {
    return Math.ceil(p.capacity / p.refillTokens) * p.refillEveryMs;
  },
};

/** Whether loading `s` at `now` would cap it at `limit` (more than whole steps of refill). */
function caps(s: PoolState, p: CompiledPool, limit: number, now: number): boolean {
  if (s.level >= limit) return s.level > limit || s.anchorMs !== 0;
  if (now < s.anchorMs) return false;
  return s.level + Math.floor((now - s.anchorMs) / p.refillEveryMs) * p.refillTokens >= limit;
}
