import { SluiceError } from "../errors.js";
import { keyIdentity, type ResolvedKey } from "../keys.js";
import type { StoreAnswer } from "../store/index.js";
import { type Config, storeRequest } from "./config.js";
import type { StoreGateway } from "./gateway.js";

/**
 * A held slot of every `concurrency` policy of a limiter, from `tryAcquire`, `acquire` or `run`.
 * Release it when the work is done; one not released or renewed expires after the policy's
 * `leaseTtl`, so a crashed holder cannot leak a slot. Works with `await using`.
 */
export interface Lease {
  /** Unique id of the lease, as the store knows it. */
  readonly id: string;
  /** Earliest expiry over its slots (epoch ms, store clock); renew moves it. */
  readonly expiresAtMs: number;
  /** Idempotent; releasing an expired lease is a no-op. */
  release(): Promise<void>;
  /** Default each policy's leaseTtl; rejects with LEASE_EXPIRED when the lease is gone. */
  renew(ttlMs?: number): Promise<void>;
  /** Releases the lease, for `await using lease = await limiter.acquire(key)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a lease was granted under, captured at acquire so later policy updates don't move it. */
interface LeaseBasis {
  readonly config: Config;
  readonly resolved: ResolvedKey;
  readonly queueId: string;
}

class HeldLease implements Lease {
  expiresAtMs: number;
  private releasing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    expiresAtMs: number,
    /** Undefined for a lease granted without a store ("allow"): nothing to release or renew. */
    readonly basis: LeaseBasis | undefined,
    private readonly desk: LeaseDesk,
  ) {
    this.expiresAtMs = expiresAtMs;
  }

  release(): Promise<void> {
    this.releasing ??= this.desk.release(this);
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
    this.expiresAtMs = await this.desk.renew(this, ttlMs);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** Grants leases for admitted acquires, and releases and renews them through the store. */
export class LeaseDesk {
  constructor(
    private readonly gateway: StoreGateway,
    /** Called with a key's queue id once a release may have freed a slot in-process. */
    private readonly freed: (queueId: string) => void,
  ) {}

  /** The lease for an admitted acquire; `answer` is undefined when no store decided ("allow"). */
  grant(id: string, config: Config, resolved: ResolvedKey, answer: StoreAnswer | undefined): Lease {
    if (answer === undefined) {
      // Admitted without a store: nothing holds the slot, it lapses on its own.
      const expiresAtMs = config.hasSlots
        ? Date.now() + config.minLeaseTtlMs
        : Number.POSITIVE_INFINITY;
      return new HeldLease(id, expiresAtMs, undefined, this);
    }
    const expiresAtMs =
      config.hasSlots && answer.leaseExpiresAtMs > 0
        ? answer.leaseExpiresAtMs
        : Number.POSITIVE_INFINITY;
    return new HeldLease(
      id,
      expiresAtMs,
      { config, resolved, queueId: keyIdentity(resolved) },
      this,
    );
  }

  async release(lease: HeldLease): Promise<void> {
    const basis = lease.basis;
    if (basis === undefined || !basis.config.hasSlots) return;
    const request = storeRequest(
      basis.config,
      "release",
      basis.resolved,
      0,
      this.gateway.storeNowMs(),
      { leaseId: lease.id },
    );
    try {
      await this.gateway.send(request, undefined, false);
    } finally {
      this.freed(basis.queueId);
    }
  }

  async renew(lease: HeldLease, ttlMs: number | undefined): Promise<number> {
    const basis = lease.basis;
    if (basis === undefined) {
      throw new SluiceError(
        "LEASE_EXPIRED",
        `lease ${lease.id} was granted without a store and cannot be renewed`,
      );
    }
    if (!basis.config.hasSlots) return Number.POSITIVE_INFINITY;
    const request = storeRequest(
      basis.config,
      "renew",
      basis.resolved,
      0,
      this.gateway.storeNowMs(),
      { leaseId: lease.id, leaseTtlMs: ttlMs },
    );
    const answer = await this.gateway.send(request, undefined, false, true);
    if (answer === undefined || !answer.allowed) {
      throw new SluiceError("LEASE_EXPIRED", `lease ${lease.id} has expired or was released`);
    }
    return answer.leaseExpiresAtMs;
  }
}
