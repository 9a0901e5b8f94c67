/**
 * `@sluice/core/store`: the contract for store authors. What the engine asks of a store
 * (`Store`, `StoreRequest`), the answer and its reader, the table of policy kinds with their
 * pure math, the reference decision `evaluate()` every store is held to, and the helpers a store
 * or its tests need to build requests, and the options checks every sluice factory uses (so a
 * store refuses a misspelt option like the rest of sluice). Users of the limiter import from
 * `@sluice/core`.
 */

export { checkMs, MAX_DURATION_MS } from "../duration.js";
export { escapeKeyPart, KeyPlan, type ResolvedKey } from "../keys.js";
export {
  type AnyKindSpec,
  type CompiledByKind,
  type ConcurrencyMath,
  type ConcurrencyState,
  concurrency,
  DUE_FIELD,
  type FixedWindowState,
  fixedWindow,
  KIND_LIST,
  KINDS,
  type KindMath,
  type KindObservation,
  type KindParam,
  type KindSpec,
  type KindStateField,
  type KindUnit,
  kindOfCode,
  type PoolState,
  paramValues,
  pool,
  type SlidingWindowState,
  type StateBase,
  slidingWindow,
  type TokenBucketState,
  tokenBucket,
} from "../kinds/index.js";
export {
  checkOptionNames,
  closestName,
  describeValue,
  optionsObject,
  unknownOptionIssues,
  unknownOptionMessage,
} from "../options-check.js";
export {
  type CompiledConcurrency,
  type CompiledFixedWindow,
  type CompiledPolicy,
  type CompiledPool,
  type CompiledSlidingWindow,
  type CompiledTokenBucket,
  compilePolicies,
  configuredLimit,
  isRatePolicy,
} from "../policy/compile.js";
export { MAX_REFILL } from "../policy/refill-bounds.js";
export {
  boundsCover,
  localMidnight,
  windowFromBounds,
  zoneWindowBounds,
} from "../time-zone.js";
export {
  answerLength,
  BOUNDS_NEEDED,
  type PolicyAnswer,
  policyAnswer,
  RESULT_HEADER,
  RESULT_STRIDE,
  readAnswer,
  type StoreAnswer,
  type StoreResult,
} from "./answer.js";
export type {
  Store,
  StoreCapabilities,
  StoreObservation,
  StoreOp,
  StoreRequest,
} from "./contract.js";
export { DeadlinePassedError } from "./deadline.js";
export { type Evaluation, evaluate, limitInForce, type PolicyStateRecord } from "./evaluate.js";
export { boundObservation, largestLimit } from "./observation-bounds.js";
export { OP_CODES, type OpCode, opCode } from "./ops.js";
