import {
  answerLength,
  type PolicyAnswer,
  RESULT_HEADER,
  RESULT_STRIDE,
  type StoreAnswer,
  type StoreResult,
} from "@sluice/core/store";

const STRIDE = 4;

/**
 * The answer of the in-process fast path: the store fills it in place for every take, and the
 * engine reads it before the store's next call, so no answer is built per decision.
 */
export class LocalAnswer implements StoreAnswer {
  allowed = false;
  nowMs = 0;
  readonly leaseExpiresAtMs = 0;
  policyCount = 0;
  /** limit, remaining, resetAtMs, retryAfterMs per policy, in one block. */
  private values = new Float64Array(4 * STRIDE);

  /** Makes room for `n` policies and starts a new answer. */
  start(n: number, nowMs: number): void {
    if (n * STRIDE > this.values.length) this.values = new Float64Array(n * STRIDE);
    this.policyCount = n;
    this.nowMs = nowMs;
  }

  set(i: number, limit: number, remaining: number, resetAtMs: number, retryAfterMs: number): void {
    const o = i * STRIDE;
    const v = this.values;
    v[o] = limit;
    v[o + 1] = remaining;
    v[o + 2] = resetAtMs;
    v[o + 3] = retryAfterMs;
  }

  limit(i: number): number {
    return this.values[i * STRIDE]!;
  }
  remaining(i: number): number {
    return this.values[i * STRIDE + 1]!;
  }
  resetAtMs(i: number): number {
    return this.values[i * STRIDE + 2]!;
  }
  retryAfterMs(i: number): number {
    return this.values[i * STRIDE + 3]!;
  }
  blocked(i: number): boolean {
    return this.values[i * STRIDE + 3] !== 0;
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
