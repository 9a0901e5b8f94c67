/**
 * One probe per key into a window the server reported empty (docs/keap.md "429 causes"): after
 * such a 429 the gate closes, the request that got it becomes the probe, and every other call
 * waits here until the probe is answered without a throttle (the gate opens) or gives up (the
 * next caller to arrive becomes the probe). Without it, every waiting caller would be admitted the
 * moment the reconciled window reopens locally and re-send into a window that may still be empty.
 */
export class ProbeGate {
  private closed = false;
  private holder: object | undefined;
  private waiters: (() => void)[] = [];

  get isClosed(): boolean {
    return this.closed;
  }

  /** True when `caller` may send now: the gate is open, or `caller` is (or becomes) the probe. */
  tryPass(caller: object): boolean {
    if (!this.closed || this.holder === caller) return true;
    if (this.holder === undefined) {
      this.holder = caller;
      return true;
    }
    return false;
  }

  /**
   * Waits until `caller` may send. Resolves false when `deadline` (epoch ms) passes first; rejects
   * when `signal` aborts.
   */
  async pass(caller: object, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    while (!this.tryPass(caller)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const i = this.waiters.indexOf(done);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve();
        };
        const onAbort = () => {
          done();
          reject(signal?.reason);
        };
        const timer = setTimeout(done, left);
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(done);
      });
      signal?.throwIfAborted();
    }
    return true;
  }

  /** A window the server reported empty: `caller` probes it, everyone else waits. */
  close(caller: object): void {
    this.closed = true;
    this.holder = caller;
  }

  /** A request went through: everyone may send again. */
  open(): void {
    if (!this.closed) return;
    this.closed = false;
    this.holder = undefined;
    this.wakeAll();
  }

  /** `caller` stops probing without an answer that opens the gate: the next caller probes. */
  release(caller: object): void {
    if (this.holder !== caller) return;
    this.holder = undefined;
    this.wakeAll();
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
