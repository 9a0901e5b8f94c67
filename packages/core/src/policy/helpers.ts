import type {
  ConcurrencyPolicy,
  FixedWindowPolicy,
  PoolPolicy,
  SlidingWindowPolicy,
  TokenBucketPolicy,
} from "./schema.js";

type Fields<P> = Omit<P, "kind">;

// Helpers return the same plain JSON a config file holds; validation happens in createLimiter.
export const tokenBucketPolicy = (p: Fields<TokenBucketPolicy>): TokenBucketPolicy => ({
  kind: "tokenBucket",
  ...p,
});
export const poolPolicy = (p: Fields<PoolPolicy>): PoolPolicy => ({ kind: "pool", ...p });
export const fixedWindowPolicy = (p: Fields<FixedWindowPolicy>): FixedWindowPolicy => ({
  kind: "fixedWindow",
  ...p,
});
export const slidingWindowPolicy = (p: Fields<SlidingWindowPolicy>): SlidingWindowPolicy => ({
  kind: "slidingWindow",
  ...p,
});
export const concurrencyPolicy = (p: Fields<ConcurrencyPolicy>): ConcurrencyPolicy => ({
  kind: "concurrency",
  ...p,
});
