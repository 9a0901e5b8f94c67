/**
 * How late the client learns of its spike slots (ms after the store admitted it: the store's answer
 * on its way back, a busy event loop), over the last few admissions. Its upper quantile is the
 * offset at which requests leave after their slot, so that a lateness that varies from one
 * admission to the next (a shared store's round trip) does not vary the gaps on the wire.
 */
export class SendOffset {
  private readonly recent: number[] = [];
  private next = 0;

  constructor(
    private readonly size = 32,
    private readonly quantile = 0.8,
  ) {}

  add(lateMs: number): void {
    const value = Math.max(0, lateMs);
    if (this.recent.length < this.size) this.recent.push(value);
    else this.recent[this.next] = value;
    this.next = (this.next + 1) % this.size;
  }

  /** The offset (ms), at most `capMs`; 0 before any admission. */
  ms(capMs: number): number {
    if (this.recent.length === 0) return 0;
    const sorted = [...this.recent].sort((a, b) => a - b);
    const at = sorted[Math.floor(this.quantile * (sorted.length - 1))] ?? 0;
    return Math.min(at, capMs);
  }
}
