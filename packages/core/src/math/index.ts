export { type ConcurrencyState, concurrency } from "./concurrency.js";
export { type Evaluation, evaluate, limitInForce, type PolicyStateRecord } from "./evaluate.js";
export { type FixedWindowState, fixedWindow } from "./fixed-window.js";
export { type PoolState, pool } from "./pool.js";
export { type SlidingWindowState, slidingWindow } from "./sliding-window.js";
export { type TokenBucketState, tokenBucket } from "./token-bucket.js";
export type { KindMath, StateBase } from "./types.js";
