/** Stable error codes. Being over a limit is a Decision, never one of these. */
export type SluiceErrorCode =
  | "INVALID_ARGUMENT"
  | "CONFIG_INVALID"
  | "STORE_UNAVAILABLE"
  | "STORE_TIMEOUT"
  | "WAIT_TIMEOUT"
  | "LEASE_EXPIRED"
  | "QUOTA_EXHAUSTED";

const RETRYABLE: Record<SluiceErrorCode, boolean> = {
  INVALID_ARGUMENT: false,
  CONFIG_INVALID: false,
  STORE_UNAVAILABLE: true,
  STORE_TIMEOUT: true,
  WAIT_TIMEOUT: true,
  LEASE_EXPIRED: false,
  QUOTA_EXHAUSTED: true,
};

export interface SluiceErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

/**
 * Marks every SluiceError, whichever copy of this module made it: an application that loads both
 * the ESM and the CJS build (one through `import`, a dependency through `require`) has two
 * SluiceError classes, and `instanceof` only knows its own.
 */
const BRAND = Symbol.for("@sluice/core:SluiceError");

/** Every error sluice throws: a stable `code`, and whether trying again can help (`retryable`). */
export class SluiceError extends Error {
  /** Stable machine-readable cause; branch on it rather than on the message. */
  readonly code: SluiceErrorCode;
  /**
   * Whether the same call may succeed later (a store outage, a timeout), as opposed to a mistake.
   */
  readonly retryable: boolean;

  constructor(code: SluiceErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SluiceError";
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE[code];
  }
}

/** One problem with a configuration value: where it is and what is wrong. */
export interface ConfigIssue {
  /** JSON path of the offending field, e.g. `policies[0].capacity` or `tenants.acme.policies[0].limit`. */
  path: string;
  /** What is wrong with the value, e.g. `unknown option (did you mean "onStoreError"?)`. */
  message: string;
}

/** Invalid policies or configuration. Lists every problem at once. */
export class ConfigError extends SluiceError {
  /** Every problem found, each with the path of the field it concerns (`policies[0].capacity`). */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options: SluiceErrorOptions = {}) {
    const summary = issues
      .slice(0, 10)
      .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
      .join("; ");
    const more = issues.length > 10 ? ` (and ${issues.length - 10} more)` : "";
    super("CONFIG_INVALID", `invalid configuration: ${summary}${more}`, options);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** `wait()`/`acquire()` could not be admitted within `timeoutMs`. */
export class LimitTimeoutError extends SluiceError {
  /** The earliest admission the limiter could foresee (epoch ms), Infinity when never. */
  readonly earliestAtMs: number;

  constructor(message: string, earliestAtMs: number) {
    super("WAIT_TIMEOUT", message);
    this.name = "LimitTimeoutError";
    this.earliestAtMs = earliestAtMs;
  }
}

/**
 * The `INVALID_ARGUMENT` error sluice throws for a malformed key, cost or observation; for
 * stores and adapters that check their own arguments the same way.
 *
 * @param message - what is wrong, naming the argument.
 * @returns a non-retryable `SluiceError` with code `INVALID_ARGUMENT` (to throw).
 */
export function invalidArgument(message: string): SluiceError {
  return new SluiceError("INVALID_ARGUMENT", message);
}

Object.defineProperty(SluiceError.prototype, BRAND, { value: true });

/** Whether `value` is a SluiceError, from this build of @sluice/core or another (ESM or CJS). */
export function isSluiceError(value: unknown): value is SluiceError {
  return (
    value instanceof SluiceError ||
    (typeof value === "object" &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true)
  );
}
