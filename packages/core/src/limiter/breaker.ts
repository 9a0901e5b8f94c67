import { checkMs } from "../duration.js";
import type { ConfigIssue } from "../errors.js";
import { describeValue, unknownOptionIssues } from "../options-check.js";

/** The limiter's `breaker` option. */
export interface BreakerOptions {
  /** Retryable failures or timeouts in a row that open the breaker (default 5). */
  failures?: number;
  /** How often an open breaker lets one probe through to the store (default 1000 ms). */
  probeMs?: number;
}

export interface BreakerSettings {
  readonly failures: number;
  readonly probeMs: number;
}

const DEFAULTS: BreakerSettings = Object.freeze({ failures: 5, probeMs: 1_000 });
const BREAKER_OPTIONS = ["failures", "probeMs"] as const;

/** Checks the `breaker` option; undefined means "off" (`breaker: false`). */
export function readBreaker(value: unknown, issues: ConfigIssue[]): BreakerSettings | undefined {
  if (value === false) return undefined;
  if (value === undefined || value === true) return DEFAULTS;
  if (typeof value !== "object" || value === null) {
    issues.push({ path: "breaker", message: "breaker must be { failures, probeMs } or false" });
    return undefined;
  }
  unknownOptionIssues(value, BREAKER_OPTIONS, issues, "breaker");
  const { failures = DEFAULTS.failures, probeMs = DEFAULTS.probeMs } = value as BreakerOptions;
  if (!Number.isSafeInteger(failures) || failures < 1) {
    issues.push({
      path: "breaker.failures",
      message: `breaker.failures must be a positive integer (got ${describeValue(failures)})`,
    });
  }
  const badProbe = checkMs(probeMs, "breaker.probeMs");
  if (badProbe !== undefined) issues.push({ path: "breaker.probeMs", message: badProbe });
  return { failures, probeMs };
}

/**
 * A circuit breaker over one store. Closed, every call goes to the store; after `failures`
 * retryable failures in a row it opens: calls are answered without the store, and one probe per
 * `probeMs` is let through. The first success (probe or a call still in flight) closes it.
 * Each method returns whether the state changed, so the caller emits `storeDown`/`storeUp`.
 */
export class Breaker {
  private streak = 0;
  private opened = false;
  private probeAt = 0;
  private probing = false;

  constructor(private readonly settings: BreakerSettings) {}

  get open(): boolean {
    return this.opened;
  }

  /** Closed with no failure counted: a success has nothing to change (one read per answer). */
  get quiet(): boolean {
    return this.streak === 0 && !this.opened && !this.probing;
  }

  /** Open: whether a probe is due now (the caller sends it and reports back). */
  probeDue(nowMs: number): boolean {
    if (this.probing || nowMs < this.probeAt) return false;
    this.probing = true;
    return true;
  }

  /** A call (or probe) answered. Returns true when this closed the breaker. */
  succeeded(): boolean {
    this.streak = 0;
    this.probing = false;
    if (!this.opened) return false;
    this.opened = false;
    return true;
  }

  /** A call (or probe) failed retryably. Returns true when this opened the breaker. */
  failed(nowMs: number, probe: boolean): boolean {
    if (probe) {
      this.probing = false;
      this.probeAt = nowMs + this.settings.probeMs;
      return false;
    }
    this.streak++;
    if (this.opened || this.streak < this.settings.failures) return false;
    this.opened = true;
    this.probeAt = nowMs + this.settings.probeMs;
    return true;
  }

  /** A probe ended without a verdict (a non-retryable error): try again next period. */
  released(nowMs: number): void {
    this.probing = false;
    this.probeAt = nowMs + this.settings.probeMs;
  }
}
