/**
 * An upper quantile of the last few values of a quantity (ms), at least 0. The client keeps two:
 * how late it learns of its spike slots (the offset at which requests leave after their slot, so
 * that a lateness that varies from one admission to the next, a shared store's round trip, does
 * not vary the gaps on the wire), and how much a round trip's network share usually exceeds its
 * shortest (see `WireDelay`).
 */
export class RecentQuantile {
  private readonly recent: number[] = [];
  private next = 0;

  constructor(
    private readonly size = 32,
    private readonly quantile = 0.8,
  ) {}

  /** How many values are kept (at most the size). */
  get count(): number {
    return this.recent.length;
  }

  add(valueMs: number): void {
    const value = Math.max(0, valueMs);
    if (this.recent.length < this.size) this.recent.push(value);
    else this.recent[this.next] = value;
    this.next = (this.next + 1) % this.size;
  }

  /** The quantile (ms), at most `capMs`; 0 before any value. */
  ms(capMs = Number.POSITIVE_INFINITY): number {
    if (this.recent.length === 0) return 0;
    const sorted = [...this.recent].sort((a, b) => a - b);
    const at = sorted[Math.floor(this.quantile * (sorted.length - 1))] ?? 0;
    return Math.min(at, capMs);
  }
}
