import type { StoreAnswer } from "@sluice/core/store";

/**
 * The answer of the in-process fast path: the store fills it in place for every take, and the
 * engine reads it before the store's next call, so no answer is built per decision.
 *
 * Per policy i, `counts` holds limit and remaining at 2 * i + 0..1, `times` resetAtMs and
 * retryAfterMs at 2 * i + 0..1. The counts are kept in a plain array: small integers stay small
 * integers there, so the Decision built from them stores them without boxing each in a heap
 * number (a Float64Array hands every value out boxed). The times are epoch ms, beyond small
 * integers anyway. The stride is written out as a literal: a bundler turns a module constant into
 * a `var`, which V8 then reads from the module context on every access.
 */
export class LocalAnswer implements StoreAnswer {
  allowed = false;
  boundsNeeded = false;
  nowMs = 0;
  readonly leaseExpiresAtMs = 0;
  policyCount = 0;
  /** Written by the fast take directly (see above); replaced by `start` when too short. */
  counts: number[] = zeros(8);
  times = new Float64Array(8);

  /** Makes room for `n` policies and starts a new answer. */
  start(n: number, nowMs: number): void {
    if (2 * n > this.times.length) {
      this.counts = zeros(2 * n);
      this.times = new Float64Array(2 * n);
    }
    this.policyCount = n;
    this.nowMs = nowMs;
    this.boundsNeeded = false;
  }

  /** Nothing applied: the clock is outside the request's time-zone bounds (see `boundsCover`). */
  needBounds(): void {
    this.boundsNeeded = true;
    this.allowed = false;
    this.counts.fill(0, 0, 2 * this.policyCount);
    this.times.fill(0, 0, 2 * this.policyCount);
  }

  limit(i: number): number {
    return this.counts[2 * i]!;
  }
  remaining(i: number): number {
    return this.counts[2 * i + 1]!;
  }
  resetAtMs(i: number): number {
    return this.times[2 * i]!;
  }
  retryAfterMs(i: number): number {
    return this.times[2 * i + 1]!;
  }
  blocked(i: number): boolean {
    return this.times[2 * i + 1] !== 0;
  }
}

/**
 * `n` zeros in a packed array of small integers (`new Array(n)` makes a holey one, whose every
 * read checks for a hole).
 */
function zeros(n: number): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(0);
  return a;
}
