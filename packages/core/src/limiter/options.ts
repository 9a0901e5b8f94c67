import { checkMs } from "../duration.js";
import { ConfigError, type ConfigIssue, invalidArgument } from "../errors.js";
import { describeValue, unknownOptionIssues, unknownOptionMessage } from "../options-check.js";
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

const LIMITER_OPTIONS = [
  "store",
  "policies",
  "prefix",
  "partitionBy",
  "onStoreError",
  "timeoutMs",
  "learnedLimitTtlMs",
  "breaker",
] as const satisfies readonly (keyof LimiterOptions)[];
const TAKE_OPTIONS = ["cost"] as const satisfies readonly (keyof TakeOptions)[];
const WAIT_OPTIONS = [
  "cost",
  "signal",
  "timeoutMs",
] as const satisfies readonly (keyof WaitOptions)[];

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
  unknownOptionIssues(options, LIMITER_OPTIONS, issues);
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
    unknownOptionIssues(onStoreError, ["fallback"], issues, "onStoreError");
  } else {
    issues.push({
      path: "onStoreError",
      message: 'onStoreError must be "deny", "allow", "throw" or { fallback: Store }',
    });
  }
  const badTimeout = checkMs(timeoutMs, "timeoutMs");
  if (badTimeout !== undefined) issues.push({ path: "timeoutMs", message: badTimeout });
  const badTtl = checkMs(learnedLimitTtlMs, "learnedLimitTtlMs");
  if (badTtl !== undefined) issues.push({ path: "learnedLimitTtlMs", message: badTtl });
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
    throw invalidArgument(`${field} must be a non-negative integer (got ${describeValue(cost)})`);
  }
  return cost;
}

/**
 * The cost of `take`, `tryAcquire` and `refund` options. Callers pass `undefined` straight to a
 * cost of 1 without calling this (the common take has no options, and pays nothing for them).
 * A number is an array index (`keys.map(limiter.take)` passes one) and means no options.
 */
export function takeCost(options: TakeOptions): number {
  if (typeof options !== "object" || options === null) return noOptions(options);
  // for-in over a one-field literal is cheap; Object.keys would allocate on every take.
  for (const name in options) if (name !== "cost") throw unknownOptions(options, TAKE_OPTIONS);
  return checkCost(options.cost);
}

/**
 * `wait`/`acquire`/`run` options, checked, with defaults applied. Like the cost, a bad timeout
 * or signal is a per-call argument (INVALID_ARGUMENT); an unknown name is a ConfigError.
 */
export function readWaitOptions(options: WaitOptions | undefined): {
  cost: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
} {
  if (typeof options !== "object" || options === null) {
    noOptions(options);
    return { cost: 1, timeoutMs: Number.POSITIVE_INFINITY, signal: undefined };
  }
  for (const name in options) {
    if (!(WAIT_OPTIONS as readonly string[]).includes(name)) {
      throw unknownOptions(options, WAIT_OPTIONS);
    }
  }
  const { cost, signal, timeoutMs = Number.POSITIVE_INFINITY } = options;
  // A deadline, not a duration of something: 0 (do not wait) and Infinity (no deadline) are fine.
  const badTimeout = checkMs(timeoutMs, "timeoutMs", {
    zero: true,
    infinity: true,
    fraction: true,
  });
  if (badTimeout !== undefined) throw invalidArgument(badTimeout);
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw invalidArgument(`signal must be an AbortSignal (got ${describeValue(signal)})`);
  }
  return { cost: checkCost(cost), timeoutMs, signal };
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as AbortSignal).aborted === "boolean" &&
    typeof (value as AbortSignal).addEventListener === "function" &&
    typeof (value as AbortSignal).removeEventListener === "function"
  );
}

/** `undefined` or an array index (see `takeCost`) read as no options; anything else is refused. */
function noOptions(value: unknown): 1 {
  if (value === undefined || typeof value === "number") return 1;
  throw new ConfigError([
    { path: "", message: `options must be an object (got ${describeValue(value)})` },
  ]);
}

function unknownOptions(options: object, known: readonly string[]): ConfigError {
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(options, known, issues);
  if (issues.length === 0) {
    // An inherited enumerable name: for-in saw it, Object.keys does not.
    for (const name in options) {
      if (!known.includes(name)) {
        issues.push({ path: name, message: unknownOptionMessage(name, known) });
      }
    }
  }
  return new ConfigError(issues);
}
