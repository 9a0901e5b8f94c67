import type { CompiledTokenBucket } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Token bucket kept in integer "token-milliseconds" so every store computes it exactly: a token
 * is `refillEveryMs` units and the bucket gains `refillTokens` units per millisecond.
 * `units` is the level at `atMs`; `atMs` may lie in the future when a reconcile holds refill back
 * until the server's reset. Level at t >= atMs: min(limit * every, units + (t - atMs) * tokens).
 * (capacity * refillEveryMs is validated to stay below 2^53.)
 */
export interface TokenBucketState extends StateBase {
  units: number;
  atMs: number;
}

export const tokenBucket: KindMath<CompiledTokenBucket, TokenBucketState> = {
  load(stored, p, limit, now, _bounds, reuse) {
    const full = limit * p.refillEveryMs;
    if (stored === undefined) return { units: full, atMs: now, ll: 0, lu: 0, dueMs: 0 };
    let units = stored.units;
    let atMs = stored.atMs;
    if (atMs < now) {
      units += (now - atMs) * p.refillTokens;
      atMs = now;
    }
    // Capping at the limit in force forgets refill a later, higher limit would count: a read
    // (peek, refused take) that is never written back must not do that to a reused object.
    const capped = units > full;
    if (capped) units = full;
    if (!reuse || capped) {
      return { units, atMs, ll: stored.ll, lu: stored.lu, dueMs: stored.dueMs };
    }
    stored.units = units;
    stored.atMs = atMs;
    return stored;
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    const need = cost * p.refillEveryMs;
    if (s.units >= need) return 0;
    return s.atMs - now + Math.ceil((need - s.units) / p.refillTokens);
  },
  charge(s, p, _limit, cost) {
    s.units -= cost * p.refillEveryMs;
  },
  refund(s, p, limit, cost) {
    s.units = Math.min(limit * p.refillEveryMs, s.units + cost * p.refillEveryMs);
  },
  reconcile(s, p, _limit, obs, now) {
    if (obs.remaining !== undefined) s.units = Math.min(s.units, obs.remaining * p.refillEveryMs);
    // The server admits at most `remaining` until its reset: hold refill back until then.
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now && obs.resetAtMs > s.atMs) {
      s.atMs = obs.resetAtMs;
    }
  },
  remaining(s, p) {
    return Math.floor(s.units / p.refillEveryMs);
  },
  resetAt(s, p, limit, now) {
    const full = limit * p.refillEveryMs;
    if (s.units >= full) return Math.max(now, s.atMs);
    return s.atMs + Math.ceil((full - s.units) / p.refillTokens);
  },
  isIdle(s, p, limit, now) {
    return s.units >= limit * p.refillEveryMs && s.atMs <= now;
  },
};
