import { SluiceError } from "./errors.js";

export interface Lease {
  readonly id: string;
  /** Earliest expiry over its slots (epoch ms, store clock); renew moves it. */
  readonly expiresAtMs: number;
  /** Idempotent; releasing an expired lease is a no-op. */
  release(): Promise<void>;
  /** Default each policy's leaseTtl; rejects with LEASE_EXPIRED when the lease is gone. */
  renew(ttlMs?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a lease needs from its limiter; captured at acquire so later policy updates don't move it. */
export interface LeaseOwner {
  releaseLease(lease: HeldLease): Promise<void>;
  renewLease(lease: HeldLease, ttlMs: number | undefined): Promise<number>;
}

export class HeldLease implements Lease {
  expiresAtMs: number;
  private releasing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    expiresAtMs: number,
    /** Opaque to the lease: the limiter's snapshot of policies and keys. */
    readonly basis: unknown,
    private readonly owner: LeaseOwner,
  ) {
    this.expiresAtMs = expiresAtMs;
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  release(): Promise<void> {
    this.releasing ??= this.owner.releaseLease(this);
    return this.releasing;
  }

  async renew(ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
      throw new SluiceError(
        "INVALID_ARGUMENT",
        `renew ttlMs must be a positive integer (got ${String(ttlMs)})`,
      );
    }
    if (this.releasing !== undefined) {
      throw new SluiceError("LEASE_EXPIRED", `lease ${this.id} was released`);
    }
    this.expiresAtMs = await this.owner.renewLease(this, ttlMs);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
