export { type ConcurrencyMath, type ConcurrencyState, concurrency } from "./concurrency.js";
export { type FixedWindowState, fixedWindow } from "./fixed-window.js";
export { type PoolState, pool } from "./pool.js";
export { type SlidingWindowState, slidingWindow } from "./sliding-window.js";
export {
  type AnyKindSpec,
  type CompiledByKind,
  DUE_FIELD,
  KIND_LIST,
  KINDS,
  type KindParam,
  type KindSpec,
  type KindStateField,
  type KindUnit,
  kindOfCode,
  paramValues,
} from "./table.js";
export { type TokenBucketState, tokenBucket } from "./token-bucket.js";
export type { KindMath, KindObservation, StateBase } from "./types.js";
