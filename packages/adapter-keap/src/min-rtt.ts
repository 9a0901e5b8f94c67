/**
 * The shortest round trip seen lately (ms), over two halves of a window so that an old minimum
 * (a quieter machine, a closer route) ages out. What a round trip takes beyond it is delay the
 * request met on its way out, in the client or on the network, or on the server before it was
 * counted: the request reached the gateway that much later than it was sent.
 */
export class MinRtt {
  private current = Number.POSITIVE_INFINITY;
  private previous = Number.POSITIVE_INFINITY;
  private sinceMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly halfWindowMs = 10_000) {}

  add(rttMs: number, nowMs: number): void {
    if (nowMs - this.sinceMs >= this.halfWindowMs) {
      this.previous = this.current;
      this.current = Number.POSITIVE_INFINITY;
      this.sinceMs = nowMs;
    }
    if (rttMs >= 0 && rttMs < this.current) this.current = rttMs;
  }

  /** Undefined until a round trip was seen. */
  get ms(): number | undefined {
    const min = Math.min(this.current, this.previous);
    return Number.isFinite(min) ? min : undefined;
  }
}
