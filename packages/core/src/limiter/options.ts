import { ConfigError, type ConfigIssue, invalidArgument } from "../errors.js";
import { type CompiledPolicy, compilePolicies } from "../policy/compile.js";
import type { Policy } from "../policy/schema.js";
import type { Store } from "../store/index.js";
import { type BreakerOptions, type BreakerSettings, readBreaker } from "./breaker.js";

/**
 * What a decision yields when the store fails or exceeds `timeoutMs`: a refusal (`"deny"`, the
 * default), an admission (`"allow"`), a rejection (`"throw"`), or a decision on another store
 * (`{ fallback }`). Decisions made without the primary store have `degraded: true`.
 */
export type OnStoreError = "deny" | "allow" | "throw" | { fallback: Store };

/**
 * Options of `createLimiter`. Unknown option names and bad values are refused with a `ConfigError`.
 */
export interface LimiterOptions {
  /**
   * Where the limiter keeps its state: `memoryStore()`, `redisStore(...)`, `postgresStore(...)` or
   * your own.
   */
  store: Store;
  /** The policies every decision applies (at least one); names unique within the limiter. */
  policies: readonly Policy[];
  /** Namespace in the store (default "sluice"). */
  prefix?: string;
  /** Key field that qualifies every policy's state; required by co-locating stores for multi-field keys. */
  partitionBy?: string;
  /** What a failed or slow store call yields (default "deny"). */
  onStoreError?: OnStoreError;
  /** Longest wait for one store call (default 1000 ms). */
  timeoutMs?: number;
  /** How long a limit learned through reconcile is kept (default 24 h). */
  learnedLimitTtlMs?: number;
  /**
   * Stop calling a failing store (default `{ failures: 5, probeMs: 1000 }`): after `failures`
   * retryable failures or timeouts in a row, decisions follow `onStoreError` at once and one
   * probe per `probeMs` checks whether the store is back. `false`: call the store every time.
   */
  breaker?: BreakerOptions | false;
}

/** Options of `take`, `tryAcquire` and `refund`. */
export interface TakeOptions {
  /** Units charged to every rate policy (default 1); a non-negative integer. */
  cost?: number;
}

/** Options of `wait`, `acquire` and `run`. */
export interface WaitOptions {
  /** Units charged to every rate policy once admitted (default 1). */
  cost?: number;
  /** Aborts the wait: the call rejects with `signal.reason` and charges nothing. */
  signal?: AbortSignal;
  /** Longest wait for admission (default Infinity). */
  timeoutMs?: number;
}

/** What a failed store call yields, with the fallback store folded in. */
export type StoreErrorMode = "deny" | "allow" | "throw" | "fallback";

/** LimiterOptions, checked, with defaults applied and the policies compiled. */
export interface Settings {
  readonly store: Store;
  readonly fallback: Store | undefined;
  readonly mode: StoreErrorMode;
  readonly prefix: string;
  readonly partitionBy: string | undefined;
  readonly timeoutMs: number;
  readonly learnedLimitTtlMs: number;
  readonly policies: readonly CompiledPolicy[];
  /** Undefined: no breaker. */
  readonly breaker: BreakerSettings | undefined;
}

const DAY_MS = 86_400_000;

function isStore(value: unknown): value is Store {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Store).execute === "function" &&
    typeof (value as Store).capabilities === "object"
  );
}

/** Checks every option at once: one ConfigError lists every problem, policies included. */
export function readOptions(options: LimiterOptions): Settings {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError([{ path: "", message: "createLimiter needs an options object" }]);
  }
  const issues: ConfigIssue[] = [];
  const {
    store,
    policies,
    prefix = "sluice",
    partitionBy,
    onStoreError = "deny",
    timeoutMs = 1_000,
    learnedLimitTtlMs = DAY_MS,
  } = options;
  if (!isStore(store))
    issues.push({ path: "store", message: "store must be a Store (e.g. memoryStore())" });
  if (typeof prefix !== "string" || prefix === "") {
    issues.push({ path: "prefix", message: "prefix must be a non-empty string" });
  }
  if (partitionBy !== undefined && (typeof partitionBy !== "string" || partitionBy === "")) {
    issues.push({ path: "partitionBy", message: "partitionBy must be a non-empty key field name" });
  }
  let fallback: Store | undefined;
  let mode: StoreErrorMode = "deny";
  if (onStoreError === "deny" || onStoreError === "allow" || onStoreError === "throw")
    mode = onStoreError;
  else if (
    typeof onStoreError === "object" &&
    onStoreError !== null &&
    isStore(onStoreError.fallback)
  ) {
    mode = "fallback";
    fallback = onStoreError.fallback;
  } else {
    issues.push({
      path: "onStoreError",
      message: 'onStoreError must be "deny", "allow", "throw" or { fallback: Store }',
    });
  }
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    issues.push({
      path: "timeoutMs",
      message: "timeoutMs must be a positive number of milliseconds",
    });
  }
  if (!Number.isSafeInteger(learnedLimitTtlMs) || learnedLimitTtlMs <= 0) {
    issues.push({
      path: "learnedLimitTtlMs",
      message: "learnedLimitTtlMs must be a positive integer of milliseconds",
    });
  }
  const breaker = readBreaker(options.breaker, issues);
  let compiled: readonly CompiledPolicy[] = [];
  try {
    compiled = compilePolicies(policies);
  } catch (e) {
    if (e instanceof ConfigError) issues.push(...e.issues);
    else throw e;
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    store,
    fallback,
    mode,
    prefix,
    partitionBy,
    timeoutMs,
    learnedLimitTtlMs,
    policies: compiled,
    breaker,
  };
}

/** A per-call cost: a non-negative safe integer, 1 when left out. */
export function checkCost(cost: unknown, field = "cost"): number {
  if (cost === undefined) return 1;
  if (typeof cost !== "number" || !Number.isSafeInteger(cost) || cost < 0) {
    throw invalidArgument(`${field} must be a non-negative integer (got ${String(cost)})`);
  }
  return cost;
}

/** A wait's `timeoutMs`: Infinity when left out. */
export function checkTimeout(value: unknown, field: string): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw invalidArgument(
      `${field} must be a number of milliseconds >= 0 or Infinity (got ${String(value)})`,
    );
  }
  return value;
}
