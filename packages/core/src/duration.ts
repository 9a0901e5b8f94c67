import { ConfigError } from "./errors.js";
import { describeValue } from "./options-check.js";

/** A duration in a policy spec: a positive integer of milliseconds, or `<n>ms|s|m|h|d`. */
export type Duration = number | string;

const DAY_MS = 86_400_000;
/**
 * The longest duration anything accepts: 100 years of 365.25 days. Far beyond any useful window
 * or timeout, and small enough that a store adding it to an epoch-ms clock stays exact (< 2^53).
 */
export const MAX_DURATION_MS = 100 * 365.25 * DAY_MS;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS } as const;
/** Digits then a unit; the value must still come to 1 ms .. 100 years (so "0s" is refused). */
export const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

const RANGE =
  'from 1 ms to 100 years: whole milliseconds or a string like "500ms", "30s", "1m", "1h", "1d"';

/**
 * The one duration check: a whole number of ms, or `<n>ms|s|m|h|d`, from 1 ms to 100 years.
 * Returns the duration in ms, or the reason it is not one, worded as `<field> must be ...`.
 */
export function durationToMs(value: unknown, field = "duration"): number | string {
  let ms = Number.NaN;
  if (typeof value === "number") ms = Number.isInteger(value) ? value : Number.NaN;
  else if (typeof value === "string") {
    const m = DURATION_PATTERN.exec(value);
    if (m) ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  }
  if (ms >= 1 && ms <= MAX_DURATION_MS) return ms;
  return `${field} must be a duration ${RANGE} (got ${describeValue(value)})`;
}

/**
 * An option given in milliseconds (`timeoutMs`, `probeMs`, ...): a whole number from 1 ms to 100
 * years. `allow` widens it for options where 0 or Infinity mean something ("do not wait", "no
 * deadline"). Returns undefined when fine, else the reason, worded as `<field> must be ...`.
 */
export function checkMs(
  value: unknown,
  field: string,
  allow: { zero?: boolean; infinity?: boolean; fraction?: boolean } = {},
): string | undefined {
  if (typeof value === "number") {
    const least = allow.zero === true ? 0 : 1;
    const fine =
      value === Number.POSITIVE_INFINITY
        ? allow.infinity === true
        : (allow.fraction === true || Number.isInteger(value)) &&
          value >= least &&
          value <= MAX_DURATION_MS;
    if (fine) return undefined;
  }
  const low = allow.zero === true ? "0" : "1";
  const whole =
    allow.fraction === true ? "a number of milliseconds" : "a whole number of milliseconds";
  const high = allow.infinity === true ? "100 years, or Infinity" : "100 years";
  return `${field} must be ${whole} from ${low} to ${high} (got ${describeValue(value)})`;
}

/** Parses a duration, throwing a ConfigError naming `field` when it is not one. */
export function parseDuration(value: Duration, field = "duration"): number {
  const ms = durationToMs(value, field);
  if (typeof ms === "string") throw new ConfigError([{ path: field, message: ms }]);
  return ms;
}
