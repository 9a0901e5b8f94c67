import type { CompiledConcurrency } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/** Concurrency slots: lease id -> expiry (epoch ms). A lease counts while now < expiry. */
export interface ConcurrencyState extends StateBase {
  /** Lease id -> expiry (epoch ms, store clock) of each slot held. */
  leases: Map<string, number>;
}

/** The concurrency kind's math: the rate interface plus taking and freeing slots. */
export interface ConcurrencyMath extends KindMath<CompiledConcurrency, ConcurrencyState> {
  /**
   * Takes one slot for `leaseId` when one is free.
   *
   * @returns the slot's expiry (epoch ms), or 0 when every slot is held.
   */
  acquire(s: ConcurrencyState, p: CompiledConcurrency, leaseId: string, nowMs: number): number;
  /** Frees the slot of `leaseId` (no-op when it holds none). */
  release(s: ConcurrencyState, leaseId: string): void;
  /** Returns the new expiry, or 0 when the lease is not held. */
  renew(
    s: ConcurrencyState,
    p: CompiledConcurrency,
    leaseId: string,
    ttlMs: number | undefined,
    nowMs: number,
  ): number;
}

/** The reference math of the `concurrency` kind: leases with a time to live. */
export const concurrency: ConcurrencyMath = {
  load(stored, _p, _limit, now, _bounds, reuse) {
    if (stored === undefined)
      return { leases: new Map(), learnedLimit: 0, learnedLimitUntilMs: 0, dueMs: 0 };
    if (reuse) {
      for (const [id, exp] of stored.leases) if (exp <= now) stored.leases.delete(id);
      return stored;
    }
    const leases = new Map<string, number>();
    for (const [id, exp] of stored.leases) if (exp > now) leases.set(id, exp);
    return { ...stored, leases };
  },
  /** Slot check: cost is always one slot. */
  check(s, _p, limit, _cost, now) {
    if (s.leases.size < limit) return 0;
    let earliest = Number.POSITIVE_INFINITY;
    for (const exp of s.leases.values()) if (exp < earliest) earliest = exp;
    return Math.max(1, earliest - now);
  },
  charge() {},
  refund() {},
  reconcile() {},
  acquire(s, p, leaseId, now) {
    const exp = now + p.leaseTtlMs;
    s.leases.set(leaseId, exp);
    return exp;
  },
  release(s, leaseId) {
    s.leases.delete(leaseId);
  },
  renew(s, p, leaseId, ttlMs, now) {
    if (!s.leases.has(leaseId)) return 0;
    const exp = now + (ttlMs ?? p.leaseTtlMs);
    s.leases.set(leaseId, exp);
    return exp;
  },
  remaining(s, _p, limit) {
    return Math.max(0, limit - s.leases.size);
  },
  resetAt(s, _p, _limit, now) {
    let latest = now;
    for (const exp of s.leases.values()) if (exp > latest) latest = exp;
    return latest;
  },
  isIdle(s) {
    return s.leases.size === 0;
  },
};
