import { invalidArgument } from "./errors.js";

/** A duration in a policy spec: a positive integer of milliseconds, or `<n>ms|s|m|h|d`. */
export type Duration = number | string;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/;

/** Returns the duration in ms, or a message saying why it is not one. */
export function durationToMs(value: unknown): number | string {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value <= 0) {
      return `must be a positive integer of milliseconds or a string like "500ms", "1m", "1d" (got ${String(value)})`;
    }
    return value;
  }
  if (typeof value === "string") {
    const m = DURATION_RE.exec(value.trim());
    if (m) {
      const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
      if (Number.isSafeInteger(ms) && ms > 0) return ms;
    }
    return `must be a positive duration like "500ms", "30s", "1m", "1h" or "1d" (got ${JSON.stringify(value)})`;
  }
  return `must be a number of milliseconds or a duration string (got ${value === null ? "null" : typeof value})`;
}

/** Parses a duration, throwing INVALID_ARGUMENT naming `field` when it is not one. */
export function parseDuration(value: Duration, field = "duration"): number {
  const ms = durationToMs(value);
  if (typeof ms === "string") throw invalidArgument(`${field} ${ms}`);
  return ms;
}
