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
export type { Key } from "./keys.js";
export {
  createLimiter,
  type Decision,
  diagnosticsChannels,
  type Lease,
  type Limiter,
  type LimiterEventName,
  type LimiterEvents,
  type LimiterOptions,
  type LimiterPolicyState,
  type Observation,
  type OnStoreError,
  type PolicyState,
  type TakeOptions,
  type WaitOptions,
} from "./limiter/index.js";
export {
  concurrencyPolicy,
  fixedWindowPolicy,
  poolPolicy,
  slidingWindowPolicy,
  tokenBucketPolicy,
} from "./policy/helpers.js";
export type {
  ConcurrencyPolicy,
  FixedWindowPolicy,
  Policy,
  PolicyKind,
  PoolPolicy,
  SlidingWindowPolicy,
  TokenBucketPolicy,
} from "./policy/schema.js";
/** Users type the limiter's `store` option with it; the rest of the contract is in `@sluice/core/store`. */
export type { Store } from "./store/index.js";
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
export { isValidTimeZone } from "./time-zone.js";
