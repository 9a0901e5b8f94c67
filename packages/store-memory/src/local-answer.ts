import type { StoreAnswer } from "@sluice/core/store";

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
}
