import type {
  ConcurrencyPolicy,
  FixedWindowPolicy,
  PoolPolicy,
  SlidingWindowPolicy,
  TokenBucketPolicy,
} from "./schema.js";

type Fields<P> = Omit<P, "kind">;

// Helpers return the same plain JSON a config file holds; validation happens in createLimiter.
/**
 * A `tokenBucket` policy: starts full and refills continuously at `refill.tokens` per
 * `refill.every`, never above `capacity`. Returns the same plain JSON you could write by hand.
 *
 * @example
 * ```ts
 * tokenBucketPolicy({ name: "burst", capacity: 10, refill: { tokens: 5, every: "1s" } });
 * ```
 */
export const tokenBucketPolicy = (p: Fields<TokenBucketPolicy>): TokenBucketPolicy => ({
  kind: "tokenBucket",
  ...p,
});
/**
 * A `pool` policy: starts full and, once below capacity, regains `refill.tokens` in whole steps
 * every `refill.every`. Returns the same plain JSON you could write by hand.
 *
 * @example
 * ```ts
 * poolPolicy({ name: "quota", capacity: 100, refill: { tokens: 100, every: "1h" } });
 * ```
 */
export const poolPolicy = (p: Fields<PoolPolicy>): PoolPolicy => ({ kind: "pool", ...p });
/**
 * A `fixedWindow` policy: at most `limit` per window (calendar-aligned by default, optionally in
 * a `timeZone`). Returns the same plain JSON you could write by hand.
 *
 * @example
 * ```ts
 * fixedWindowPolicy({ name: "daily", limit: 1000, window: "1d", timeZone: "Europe/London" });
 * ```
 */
export const fixedWindowPolicy = (p: Fields<FixedWindowPolicy>): FixedWindowPolicy => ({
  kind: "fixedWindow",
  ...p,
});
/**
 * A `slidingWindow` policy: at most `limit` admitted in any span of `window`. Returns the same
 * plain JSON you could write by hand.
 *
 * @example
 * ```ts
 * slidingWindowPolicy({ name: "perMinute", limit: 60, window: "1m" });
 * ```
 */
export const slidingWindowPolicy = (p: Fields<SlidingWindowPolicy>): SlidingWindowPolicy => ({
  kind: "slidingWindow",
  ...p,
});
/**
 * A `concurrency` policy: at most `limit` leases held at once, each expiring after `leaseTtl`
 * unless released or renewed. Returns the same plain JSON you could write by hand.
 *
 * @example
 * ```ts
 * concurrencyPolicy({ name: "inFlight", limit: 4, leaseTtl: "30s" });
 * ```
 */
export const concurrencyPolicy = (p: Fields<ConcurrencyPolicy>): ConcurrencyPolicy => ({
  kind: "concurrency",
  ...p,
});
