/**
 * How far the store's clock is ahead of this process's (ms), for reading the store's times (a
 * decision's `resetAtMs`) on our own clock whatever the skew between hosts. Each admission gives
 * a lower bound: the store admitted the request before its answer reached us, so its admission
 * time less our clock on arrival is at most the offset, short by the answer's trip back. The
 * largest bound seen lately (over two halves of a window, so that a clock step ages out) is the
 * estimate.
 */
export class StoreClock {
  private current = Number.NEGATIVE_INFINITY;
  private previous = Number.NEGATIVE_INFINITY;
  private sinceMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly halfWindowMs = 30_000) {}

  /** The store admitted at `storeMs` (its clock); the answer arrived at `nowMs` (ours). */
  admitted(storeMs: number, nowMs: number): void {
    if (!Number.isFinite(storeMs)) return;
    if (nowMs - this.sinceMs >= this.halfWindowMs) {
      this.previous = this.current;
      this.current = Number.NEGATIVE_INFINITY;
      this.sinceMs = nowMs;
    }
    const bound = storeMs - nowMs;
    if (bound > this.current) this.current = bound;
  }

  /** A time of the store's clock on ours (unchanged until an admission was seen). */
  toLocal(storeMs: number): number {
    const offset = Math.max(this.current, this.previous);
    return Number.isFinite(offset) ? storeMs - offset : storeMs;
  }
}
