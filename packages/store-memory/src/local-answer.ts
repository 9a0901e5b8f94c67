import type { StoreAnswer } from "@sluice/core/store";

/**
 * The answer of the in-process fast path: the store fills it in place for every take, and the
 * engine reads it before the store's next call, so no answer is built per decision.
 *
 * Per policy i, `values` holds limit, remaining, resetAtMs and retryAfterMs at 4 * i + 0..3. The
 * stride is written out as a literal: a bundler turns a module constant into a `var`, which V8
 * then reads from the module context on every access.
 */
export class LocalAnswer implements StoreAnswer {
  allowed = false;
  boundsNeeded = false;
  nowMs = 0;
  readonly leaseExpiresAtMs = 0;
  policyCount = 0;
  private values = new Float64Array(16);

  /** Makes room for `n` policies and starts a new answer. */
  start(n: number, nowMs: number): void {
    if (4 * n > this.values.length) this.values = new Float64Array(4 * n);
    this.policyCount = n;
    this.nowMs = nowMs;
    this.boundsNeeded = false;
  }

  /** Nothing applied: the clock is outside the request's time-zone bounds (see `boundsCover`). */
  needBounds(): void {
    this.boundsNeeded = true;
    this.allowed = false;
    this.values.fill(0, 0, 4 * this.policyCount);
  }

  /** What the check found: the limit in force and the retry (0: this policy admits). */
  setCheck(i: number, limit: number, retryAfterMs: number): void {
    const v = this.values;
    v[4 * i] = limit;
    v[4 * i + 3] = retryAfterMs;
  }

  /** The policy's state after the decision. */
  setState(i: number, remaining: number, resetAtMs: number): void {
    const v = this.values;
    v[4 * i + 1] = remaining;
    v[4 * i + 2] = resetAtMs;
  }

  limit(i: number): number {
    return this.values[4 * i]!;
  }
  remaining(i: number): number {
    return this.values[4 * i + 1]!;
  }
  resetAtMs(i: number): number {
    return this.values[4 * i + 2]!;
  }
  retryAfterMs(i: number): number {
    return this.values[4 * i + 3]!;
  }
  blocked(i: number): boolean {
    return this.values[4 * i + 3] !== 0;
  }
}
