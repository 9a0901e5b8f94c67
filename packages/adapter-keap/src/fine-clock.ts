/**
 * This process's wall clock to a fraction of a millisecond: the monotonic clock, kept within the
 * whole millisecond `Date.now()` shows. A request can then leave at its time on the wire more
 * finely than a timer fires, and a step of the wall clock is followed at the next reading.
 */
export class FineClock {
  /** Wall clock less monotonic clock (ms); NaN before the first reading. */
  private baseMs = Number.NaN;

  now(): number {
    const wallMs = Date.now();
    const monoMs = performance.now();
    const fine = monoMs + this.baseMs;
    if (fine >= wallMs && fine < wallMs + 1) return fine;
    // Drifted out of the millisecond the wall clock shows (or the first reading): back to its
    // nearer edge.
    this.baseMs = (fine >= wallMs + 1 ? wallMs + 1 - EDGE_MS : wallMs) - monoMs;
    return monoMs + this.baseMs;
  }
}

/** Within the millisecond, short of its end by this much. */
const EDGE_MS = 0.001;
