import {
  createLimiter,
  type Limiter,
  type OnStoreError,
  type Policy,
  type Store,
} from "@sluice/core";

/** What the client's limiters share: the same store, namespace and partition, so the same state. */
export interface SharedLimiterOptions {
  store: Store;
  prefix: string;
  partitionBy?: string;
  onStoreError?: OnStoreError;
  timeoutMs?: number;
}

/**
 * The client's spike bucket, held by a limiter of its own: the same state in the store (same
 * prefix, partition, policy name, scope and refill, so the store reads it in the same units)
 * with the capacity each call needs. A token bucket refills at `unitsPerMs` units per ms and a
 * request is `unitsPerRequest` units (a microsecond each), so an observation with a reset holds
 * the next slot to the millisecond, for every process sharing the store; `reconcile` only
 * lowers, so a slot already later stays where it is.
 */
export class SpikeSlots {
  private readonly limiter: Limiter;

  constructor(
    shared: SharedLimiterOptions,
    private spike: Extract<Policy, { kind: "tokenBucket" }>,
  ) {
    this.limiter = createLimiter({ ...shared, policies: [spike] });
  }

  /**
   * No spike slot before `atMs` (epoch ms; `nowMs` on the same clock), given the client's bucket of
   * `capacity` requests at `unitsPerRequest` units each. A failure only loses the hold.
   */
  async notBefore(
    key: Readonly<Record<string, string>>,
    atMs: number,
    nowMs: number,
    unitsPerRequest: number,
    unitsPerMs: number,
    capacity: number,
  ): Promise<void> {
    const aheadMs = atMs - nowMs;
    if (aheadMs <= 0) return;
    // The store refills a slot in whole ms: emptied at a whole ms, it is full again this many later.
    const refillMs = Math.ceil(unitsPerRequest / unitsPerMs);
    this.limiter.updatePolicies([this.policy(capacity, unitsPerRequest, unitsPerMs)]);
    // Empty as of one refill before atMs (refilling since, when that is past): the next request
    // fits at atMs, or within the ms after it (an early slot risks a spike 429).
    const observation = {
      policy: this.spike.name,
      remaining: 0,
      resetAtMs: Math.ceil(atMs - refillMs),
    };
    await this.limiter.reconcile(key, observation).catch(() => {});
  }

  /**
   * Waits for a slot of the client's one-slot bucket and takes it, charging no other policy (a
   * request whose first slot went by unused). A failure or a timeout only loses the wait.
   */
  async take(
    key: Readonly<Record<string, string>>,
    unitsPerRequest: number,
    unitsPerMs: number,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<void> {
    this.limiter.updatePolicies([this.policy(1, unitsPerRequest, unitsPerMs)]);
    await this.limiter.wait(key, options).catch((e: unknown) => {
      if (options.signal?.aborted) throw e;
    });
  }

  close(reason: string): void {
    this.limiter.close(reason);
  }

  /**
   * The client's spike policy with `capacity` requests: the same refill (`unitsPerMs` tokens
   * every `unitsPerRequest` ms), so the state keeps its unit and nothing is rescaled.
   */
  private policy(capacity: number, unitsPerRequest: number, unitsPerMs: number): Policy {
    return {
      kind: "tokenBucket",
      name: this.spike.name,
      ...(this.spike.scope === undefined ? {} : { scope: this.spike.scope }),
      capacity: Math.max(1, Math.round(capacity)),
      refill: { tokens: unitsPerMs, every: Math.max(1, Math.round(unitsPerRequest)) },
    } as Policy;
  }
}
