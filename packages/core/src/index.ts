export { type Duration, durationToMs, parseDuration } from "./duration.js";
export {
  ConfigError,
  type ConfigIssue,
  invalidArgument,
  isSluiceError,
  LimitTimeoutError,
  SluiceError,
  type SluiceErrorCode,
} from "./errors.js";
export * from "./headers/index.js";
export { escapeKeyPart, type Key, KeyPlan, type ResolvedKey } from "./keys.js";
export * from "./limiter.js";
export * from "./math/index.js";
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
} from "./policy/compile.js";
export {
  concurrencyPolicy,
  fixedWindowPolicy,
  poolPolicy,
  slidingWindowPolicy,
  tokenBucketPolicy,
} from "./policy/helpers.js";
export { formatPath } from "./policy/issues.js";
export type {
  ConcurrencyPolicy,
  FixedWindowPolicy,
  Policy,
  PolicyKind,
  PoolPolicy,
  SlidingWindowPolicy,
  TokenBucketPolicy,
} from "./policy/schema.js";
export {
  RESULT_HEADER,
  RESULT_STRIDE,
  type Store,
  type StoreCapabilities,
  type StoreObservation,
  type StoreOp,
  type StoreRequest,
  type StoreResult,
} from "./store.js";
export {
  createTenantRegistry,
  type ParseTenantConfigOptions,
  type ProfileDefinition,
  type Profiles,
  parseTenantConfig,
  type TenantConfig,
  type TenantEntry,
  type TenantRegistry,
  type TenantRegistryOptions,
} from "./tenants/index.js";
export { isValidTimeZone, localMidnight, zoneWindowBounds } from "./time-zone.js";
