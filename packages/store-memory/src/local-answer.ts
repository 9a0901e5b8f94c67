import {
  answerLength,
  type PolicyAnswer,
  RESULT_HEADER,
  RESULT_STRIDE,
  type StoreAnswer,
  type StoreResult,
} from "@sluice/core/store";

/**
 * The answer of the in-process fast path: the store fills it in place for every take, and the
 * engine reads it before the store's next call, so no answer is built per decision.
 */
export class LocalAnswer implements StoreAnswer {
  allowed = false;
  nowMs = 0;
  readonly leaseExpiresAtMs = 0;
  policyCount = 0;
  private limits = new Float64Array(4);
  private remainings = new Float64Array(4);
  private resets = new Float64Array(4);
  private retries = new Float64Array(4);

  /** Makes room for `n` policies and starts a new answer. */
  start(n: number, nowMs: number): void {
    if (n > this.limits.length) {
      this.limits = new Float64Array(n);
      this.remainings = new Float64Array(n);
      this.resets = new Float64Array(n);
      this.retries = new Float64Array(n);
    }
    this.policyCount = n;
    this.nowMs = nowMs;
  }

  set(i: number, limit: number, remaining: number, resetAtMs: number, retryAfterMs: number): void {
    this.limits[i] = limit;
    this.remainings[i] = remaining;
    this.resets[i] = resetAtMs;
    this.retries[i] = retryAfterMs;
  }

  limit(i: number): number {
    return this.limits[i]!;
  }
  remaining(i: number): number {
    return this.remainings[i]!;
  }
  resetAtMs(i: number): number {
    return this.resets[i]!;
  }
  retryAfterMs(i: number): number {
    return this.retries[i]!;
  }
  blocked(i: number): boolean {
    return this.retries[i] !== 0;
  }
  policy(i: number): PolicyAnswer {
    return {
      limit: this.limit(i),
      remaining: this.remaining(i),
      resetAtMs: this.resetAtMs(i),
      retryAfterMs: this.retryAfterMs(i),
      blocked: this.blocked(i),
    };
  }

  /** The wire form, built on demand (tools and tests; the engine reads the accessors). */
  get result(): StoreResult {
    const n = this.policyCount;
    const r = new Array<number>(answerLength(n));
    r[0] = this.allowed ? 1 : 0;
    r[1] = this.nowMs;
    r[2] = 0;
    r[3] = 0;
    for (let i = 0; i < n; i++) {
      const o = RESULT_HEADER + RESULT_STRIDE * i;
      r[o] = this.limit(i);
      r[o + 1] = this.remaining(i);
      r[o + 2] = this.resetAtMs(i);
      r[o + 3] = this.retryAfterMs(i);
      r[o + 4] = this.blocked(i) ? 1 : 0;
    }
    return r;
  }
}
