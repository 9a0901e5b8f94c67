/**
 * An upper bound on how far a remote store's clock is ahead of this process's, for moving a
 * server's reset onto the store's clock without ever moving it early. A request sent at `sentMs`
 * (this process's whole ms, at or before the send) that the store stamped `storeNowMs` (its whole
 * ms, at or after the request arrived) bounds the offset from above by storeNowMs + 1 - sentMs,
 * too high by the trip out and the two roundings. The least bound seen lately (over two halves of
 * a window, so that a clock stepping back ages out) is close to the offset.
 */
export class OffsetCeiling {
  private current = Number.POSITIVE_INFINITY;
  private previous = Number.POSITIVE_INFINITY;
  private sinceMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly halfWindowMs = 30_000) {}

  /** The store stamped `storeNowMs` on a request sent at `sentMs`. */
  add(storeNowMs: number, sentMs: number): void {
    if (!Number.isFinite(storeNowMs)) return;
    if (sentMs - this.sinceMs >= this.halfWindowMs) {
      this.previous = this.current;
      this.current = Number.POSITIVE_INFINITY;
      this.sinceMs = sentMs;
    }
    const bound = storeNowMs + 1 - sentMs;
    if (bound < this.current) this.current = bound;
  }

  /**
   * The offset to move a reset by: the least recent bound, or `lowerMs` (an offset measured on an
   * answer's arrival, which errs low) when that is higher: the store's clock stepped ahead since.
   */
  ms(lowerMs: number): number {
    const ceiling = Math.min(this.current, this.previous);
    return ceiling > lowerMs ? ceiling : lowerMs;
  }
}
