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
 * The client's spike bucket, read at microsecond grain. It is the same state in the store (same
 * prefix, partition, policy name and scope) declared with a token of one unit instead of one
 * request: the client's bucket counts a request as `unitsPerRequest` units and gains
 * `unitsPerMs` per ms, so a whole `remaining` reported to this limiter sets the level to the unit,
 * which `reconcile` on the request-sized bucket cannot (it takes whole requests). That moves the
 * next slot to a given time, for every process sharing the store; `reconcile` only lowers, so a
 * slot already later stays where it is.
 */
export class SpikeSlots {
  private readonly limiter: Limiter;

  constructor(
    shared: SharedLimiterOptions,
    private spike: Extract<Policy, { kind: "tokenBucket" }>,
  ) {
    this.limiter = createLimiter({ ...shared, policies: [this.unitPolicy(1, 1)] });
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
    const spacingMs = unitsPerRequest / unitsPerMs;
    this.limiter.updatePolicies([this.unitPolicy(capacity * unitsPerRequest, unitsPerMs)]);
    const observation =
      aheadMs >= spacingMs
        ? // Empty until atMs less one spacing: the next request fits at atMs.
          { policy: this.spike.name, remaining: 0, resetAtMs: Math.ceil(atMs - spacingMs) }
        : // Part of a request now: the rest refills by atMs.
          {
            policy: this.spike.name,
            remaining: Math.max(0, Math.floor(unitsPerRequest - aheadMs * unitsPerMs)),
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
    this.limiter.updatePolicies([this.unitPolicy(unitsPerRequest, unitsPerMs)]);
    await this.limiter.wait(key, { ...options, cost: unitsPerRequest }).catch((e: unknown) => {
      if (options.signal?.aborted) throw e;
    });
  }

  close(reason: string): void {
    this.limiter.close(reason);
  }

  private unitPolicy(capacityUnits: number, unitsPerMs: number): Policy {
    return {
      kind: "tokenBucket",
      name: this.spike.name,
      ...(this.spike.scope === undefined ? {} : { scope: this.spike.scope }),
      capacity: Math.max(1, Math.round(capacityUnits)),
      refill: { tokens: unitsPerMs, every: 1 },
    } as Policy;
  }
}
