import type { KeapMessageRate } from "./causes.js";

/**
 * Spike pacing that adapts (docs/keap.md "Adaptive pacing"): additive-increase of the rate,
 * multiplicative decrease on a spike 429, as KEAP.md "Settled 2026-12" asks:
 * - start `startMargin` below the nominal rate (about 10%);
 * - every 2 s without a spike 429, shorten the spacing by 0.5%, down to a floor 2% below the
 *   nominal rate, or the per-minute throttle's spacing when longer (`strict`: never below the
 *   start);
 * - on a spike 429, lengthen it by 10% (at least to the fault's `MessageRate`), at most 8 times
 *   the start;
 * - other senders seen in `x-keap-product-throttle-available` (requests the server counted that
 *   this client did not send) take their share of the nominal rate first.
 * Spacings are in ms, fractional: the spike bucket refills in thousandths of a ms.
 */
export class SpikePacing {
  /** Nominal spike rate per second: the profile's, or the server's once a fault reports less. */
  private nominal: number;
  private readonly startMargin: number;
  private readonly strict: boolean;
  /** The AIMD spacing, before other senders' share. */
  private aimdMs: number;
  private lastEventMs: number;
  /**
   * Requests per second that other senders spend (smoothed), and the fewest requests seen counted
   * by the server and not by this client since the last tick.
   */
  private othersPerSecond = 0;
  private foreign = Number.POSITIVE_INFINITY;
  private foreignSinceMs: number;

  /**
   * `minSpacingMs`: the spacing of the per-minute throttle (a minute over its limit). Pacing the
   * spike faster than that gains nothing over a minute, so the floor never goes below it (for
   * PAT/SAK, 240 per minute is 250 ms: pacing stays at its start).
   */
  constructor(
    nominalPerSecond: number,
    startMargin: number,
    strict: boolean,
    nowMs: number,
    private readonly minSpacingMs = 0,
    private readonly throttleWindowMs = 60_000,
  ) {
    this.nominal = nominalPerSecond;
    this.startMargin = startMargin;
    this.strict = strict;
    this.aimdMs = this.startMs();
    this.lastEventMs = nowMs;
    this.foreignSinceMs = nowMs;
  }

  /** The spacing in force (ms). */
  get spacingMs(): number {
    const share = Math.max(this.nominal - this.othersPerSecond, this.nominal * MIN_SHARE);
    return this.aimdMs * (this.nominal / share);
  }

  /**
   * True when pacing may go faster than its start: the spike rate, not the per-minute throttle,
   * binds, and `strict` is off. Only then is catching up on late admissions worth a short gap.
   */
  get adapts(): boolean {
    return this.floorMs() < this.startMs() - 1e-9;
  }

  /** The AIMD spacing, before other senders' share: what processes sharing a store exchange. */
  get ownSpacingMs(): number {
    return this.aimdMs;
  }

  /**
   * Another process sharing the store slowed down to `aimdMs` after a spike 429: follow it when it
   * is slower, as if the 429 were this client's own (the 2-second steps start again from now).
   * Returns true when the spacing changed.
   */
  adopt(aimdMs: number, nowMs: number): boolean {
    const next = Math.min(Math.max(aimdMs, this.floorMs()), this.slowestMs());
    if (next <= this.aimdMs + 1e-6) return false;
    this.aimdMs = next;
    this.lastEventMs = nowMs;
    return true;
  }

  /** True once a spike 429 has slowed pacing to its slowest. */
  get atSlowest(): boolean {
    return this.aimdMs >= this.slowestMs() - 1e-9;
  }

  /** A spike 429: 10% slower, or the fault's rate (with the start margin) when slower still. */
  onSpike(rate: KeapMessageRate | undefined, nowMs: number): void {
    this.lastEventMs = nowMs;
    const server = rate === undefined ? undefined : perSecond(rate);
    if (server !== undefined && server < this.nominal) this.nominal = server;
    let next = this.aimdMs * SLOWER;
    if (server !== undefined) next = Math.max(next, this.startMs());
    this.aimdMs = Math.min(next, this.slowestMs());
  }

  /**
   * Called after each answered request: applies the 2-second steps due since the last event, and
   * refreshes the share other senders take. Returns true when the spacing changed.
   */
  tick(nowMs: number): boolean {
    const before = this.spacingMs;
    const steps = Math.floor((nowMs - this.lastEventMs) / STEP_MS);
    if (steps > 0) {
      this.lastEventMs += steps * STEP_MS;
      const floor = this.floorMs();
      if (this.aimdMs > floor) this.aimdMs = Math.max(floor, this.aimdMs * FASTER ** steps);
    }
    const spanMs = nowMs - this.foreignSinceMs;
    if (spanMs >= STEP_MS) {
      // What the server counts in its window beyond this client's own is what other senders sent
      // in one window's time: their rate. The fewest seen over the step, since a request of this
      // client in flight can make the server's count run ahead of the store's for a moment.
      const seen = Number.isFinite(this.foreign)
        ? (this.foreign * 1000) / this.throttleWindowMs
        : 0;
      // Smoothed over a few steps: one burst of another sender should not halve the pace.
      this.othersPerSecond = this.othersPerSecond * 0.5 + seen * 0.5;
      if (this.othersPerSecond < 0.05) this.othersPerSecond = 0;
      this.foreign = Number.POSITIVE_INFINITY;
      this.foreignSinceMs = nowMs;
    }
    return Math.abs(this.spacingMs - before) > 1e-6;
  }

  /**
   * Requests the server reports counted in its throttle window beyond those this client (or its
   * store) counted in its own: other senders' requests of the last window.
   */
  observeForeign(count: number): void {
    this.foreign = Math.min(this.foreign, Math.max(0, count));
  }

  /** Other senders' rate as last estimated (requests per second). */
  get others(): number {
    return this.othersPerSecond;
  }

  private startMs(): number {
    return (1000 * (1 + this.startMargin)) / this.nominal;
  }

  private floorMs(): number {
    if (this.strict) return this.startMs();
    const floor = Math.max(1000 / (this.nominal * (1 - FLOOR_MARGIN)), this.minSpacingMs);
    return Math.min(this.startMs(), floor);
  }

  private slowestMs(): number {
    return this.startMs() * MAX_SLOWDOWN;
  }
}

/** Rate floor: 2% below nominal. */
const FLOOR_MARGIN = 0.02;
const STEP_MS = 2_000;
const FASTER = 0.995;
const SLOWER = 1.1;
const MAX_SLOWDOWN = 8;
/** Other senders never push this client below a tenth of the nominal rate. */
const MIN_SHARE = 0.1;

/**
 * A `MessageRate` as requests per second (docs/keap.md "429 causes"): the period of a per-second
 * rate is the base second times the processor count, of any length (25 per 6 s, 25 per 6.5 s:
 * 25 per second); a period of a minute or more is a per-minute rate (times processors); a period
 * under a second is the count split into intervals (1 per 40 ms: 25 per second).
 */
export function perSecond(rate: KeapMessageRate): number {
  const { messagesPerPeriod: m, periodMs } = rate;
  if (periodMs < 1_000) return (m * 1000) / periodMs;
  if (periodMs < 60_000) return m;
  return m / 60;
}
