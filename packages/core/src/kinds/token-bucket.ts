import type { CompiledTokenBucket } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Token bucket kept in integer token-milliseconds so every store computes it exactly: a token is
 * `refillEveryMs` units and the bucket gains `refillTokens` units per millisecond. `level` is the
 * level at `levelAtMs`, which may lie in the future when a reconcile holds refill back until the
 * server's reset. Level at t >= levelAtMs: min(limit * every, level + (t - levelAtMs) * tokens).
 * (capacity * refillEveryMs is validated to stay below 2^53.)
 */
export interface TokenBucketState extends StateBase {
  /** Token-milliseconds (tokens * refillEveryMs). */
  level: number;
  /** Epoch ms at which the bucket holds `level`. */
  levelAtMs: number;
}

/** The reference math of the `tokenBucket` kind: continuous refill up to capacity. */
export const tokenBucket: KindMath<CompiledTokenBucket, TokenBucketState> = {
  load(stored, p, limit, now, _bounds, reuse) {
    const full = limit * p.refillEveryMs;
    if (stored === undefined) {
      return { level: full, levelAtMs: now, learnedLimit: 0, learnedLimitUntilMs: 0, dueMs: 0 };
    }
    let level = stored.level;
    let levelAtMs = stored.levelAtMs;
    if (levelAtMs < now) {
      level += (now - levelAtMs) * p.refillTokens;
      levelAtMs = now;
    }
    // Capping at the limit in force forgets refill a later, higher limit would count: a read
    // (peek, refused take) that is never written back must not do that to a reused object.
    const capped = level > full;
    if (capped) level = full;
    if (!reuse || capped) {
      return {
        level,
        levelAtMs,
        learnedLimit: stored.learnedLimit,
        learnedLimitUntilMs: stored.learnedLimitUntilMs,
        dueMs: stored.dueMs,
      };
    }
    stored.level = level;
    stored.levelAtMs = levelAtMs;
    return stored;
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    const need = cost * p.refillEveryMs;
    if (s.level >= need) return 0;
    return s.levelAtMs - now + Math.ceil((need - s.level) / p.refillTokens);
  },
  charge(s, p, _limit, cost) {
    s.level -= cost * p.refillEveryMs;
  },
  refund(s, p, limit, cost) {
    s.level = Math.min(limit * p.refillEveryMs, s.level + cost * p.refillEveryMs);
  },
  reconcile(s, p, _limit, obs, now) {
    // `remaining` is an upper bound. A report at or below the local level binds now: the server
    // admits at most that many until its reset, so refill is held back until then. A report above
    // the level leaves the bucket refilling at its own rate.
    if (obs.remaining === undefined || obs.remaining * p.refillEveryMs > s.level) return;
    s.level = obs.remaining * p.refillEveryMs;
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now && obs.resetAtMs > s.levelAtMs) {
      s.levelAtMs = obs.resetAtMs;
    }
  },
  remaining(s, p) {
    return Math.floor(s.level / p.refillEveryMs);
  },
  resetAt(s, p, limit, now) {
    const full = limit * p.refillEveryMs;
    if (s.level >= full) return Math.max(now, s.levelAtMs);
    return s.levelAtMs + Math.ceil((full - s.level) / p.refillTokens);
  },
  isIdle(s, p, limit, now) {
    return s.level >= limit * p.refillEveryMs && s.levelAtMs <= now;
  },
  refillSpanMs(p) {
    return Math.ceil((p.capacity * p.refillEveryMs) / p.refillTokens);
  },
};
