import type { Key, Lease } from "@sluice/core";
import type { LimiterLike } from "./options.js";

function ignore(): void {}

/**
 * What an admitted request holds until its response is over: a lease on its concurrency slots
 * and, with `refund`, the charge it may give back. Settled exactly once, on the first of "the
 * response finished" and "the connection closed".
 */
export class Charge {
  private settled = false;

  constructor(
    private readonly limiter: LimiterLike,
    private readonly key: Key,
    private readonly cost: number,
    private readonly lease: Lease | null,
    private readonly refund: ((statusCode: number) => boolean) | undefined,
  ) {}

  /** The response was sent with `statusCode`. */
  finish(statusCode: number): void {
    if (this.settled) return;
    this.settled = true;
    // A failed release is not the client's problem: the slot lapses after its leaseTtl anyway.
    this.lease?.release().catch(ignore);
    if (this.refund !== undefined && this.cost > 0 && this.refund(statusCode)) {
      this.limiter.refund(this.key, { cost: this.cost }).catch(ignore);
    }
  }

  /** The client went away before the response was complete: free the slots, keep the charge. */
  abort(): void {
    if (this.settled) return;
    this.settled = true;
    this.lease?.release().catch(ignore);
  }
}
