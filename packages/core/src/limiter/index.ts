import type { Key } from "../keys.js";
import type { CompiledPolicy } from "../policy/compile.js";
import type { Policy } from "../policy/schema.js";
import type { Decision, PolicyState } from "./decision.js";
import { LimiterEngine } from "./engine.js";
import type { LimiterEventName, LimiterEvents } from "./events.js";
import type { Lease } from "./leases.js";
import type { Observation } from "./observation.js";
import type { LimiterOptions, TakeOptions, WaitOptions } from "./options.js";

export type { Decision, PolicyState } from "./decision.js";
export { diagnosticsChannels, type LimiterEventName, type LimiterEvents } from "./events.js";
export type { Lease } from "./leases.js";
export type { Observation } from "./observation.js";
export type { LimiterOptions, OnStoreError, TakeOptions, WaitOptions } from "./options.js";
export type { PolicyState as LimiterPolicyState };

/**
 * A limiter over one store and one list of policies. Every method is bound: `keys.map(limiter.take)`
 * and handing `limiter.take` on as a callback work.
 */
export interface Limiter {
  /** One atomic decision over every rate policy: charged to all, or to none. */
  take(key: Key, options?: TakeOptions): Promise<Decision>;
  /** The current state, charging nothing (`allowed`: whether a take of cost 1 would be admitted). */
  peek(key: Key): Promise<Decision>;
  /** Resolves with the admitting decision; in-process FIFO per key. */
  wait(key: Key, options?: WaitOptions): Promise<Decision>;
  /** Rate policies and one slot of every concurrency policy, atomically. */
  tryAcquire(key: Key, options?: TakeOptions): Promise<{ decision: Decision; lease: Lease | null }>;
  /** Waits like `wait` for rate capacity and a slot of every concurrency policy. */
  acquire(key: Key, options?: WaitOptions): Promise<Lease>;
  /** `acquire`, `fn(lease)`, then release whatever happens. */
  run<T>(key: Key, fn: (lease: Lease) => T | Promise<T>, options?: WaitOptions): Promise<T>;
  /** Gives back a charge that did not reach its target (never above full). */
  refund(key: Key, options?: TakeOptions): Promise<void>;
  /** Folds authoritative server state into the local state. */
  reconcile(key: Key, observations: Observation | readonly Observation[]): Promise<void>;
  /** Forgets all state of the key. */
  reset(key: Key): Promise<void>;
  /** The compiled policies in force. */
  readonly policies: readonly CompiledPolicy[];
  /**
   * Replaces the policies (hot reload). State is keyed by policy name, so a policy that keeps its
   * name keeps what was consumed; waits in progress continue under the new policies; leases
   * already held keep their slots until released or expired.
   */
  updatePolicies(policies: readonly Policy[]): void;
  /** Stops the limiter: pending waits reject and new calls throw INVALID_ARGUMENT. */
  close(reason?: string): void;
  readonly closed: boolean;
  on<E extends LimiterEventName>(
    event: E,
    listener: (payload: LimiterEvents[E]) => void,
  ): () => void;
  off<E extends LimiterEventName>(event: E, listener: (payload: LimiterEvents[E]) => void): void;
}

/** Creates a limiter; validates the policies synchronously (ConfigError paths start at `policies[i]`). */
export function createLimiter(options: LimiterOptions): Limiter {
  const engine = new LimiterEngine(options);
  // Methods close over the engine instead of reading `this`, so each can be passed around alone.
  const limiter = {
    take: (key: Key, options?: TakeOptions) => engine.take(key, options),
    peek: (key: Key) => engine.peek(key),
    wait: (key: Key, options?: WaitOptions) => engine.wait(key, options),
    tryAcquire: (key: Key, options?: TakeOptions) => engine.tryAcquire(key, options),
    acquire: (key: Key, options?: WaitOptions) => engine.acquire(key, options),
    run: <T>(key: Key, fn: (lease: Lease) => T | Promise<T>, options?: WaitOptions) =>
      engine.run(key, fn, options),
    refund: (key: Key, options?: TakeOptions) => engine.refund(key, options),
    reconcile: (key: Key, observations: Observation | readonly Observation[]) =>
      engine.reconcile(key, observations),
    reset: (key: Key) => engine.reset(key),
    updatePolicies: (policies: readonly Policy[]) => engine.updatePolicies(policies),
    close: (reason?: string) => engine.close(reason),
    on: <E extends LimiterEventName>(event: E, listener: (payload: LimiterEvents[E]) => void) =>
      engine.on(event, listener),
    off: <E extends LimiterEventName>(event: E, listener: (payload: LimiterEvents[E]) => void) =>
      engine.off(event, listener),
  };
  // The getters are defined afterwards: V8 keeps an object literal with accessors in dictionary
  // mode, where every `limiter.take` is a hash lookup instead of a load from a known offset.
  Object.defineProperties(limiter, {
    policies: { get: () => engine.policies, enumerable: true },
    closed: { get: () => engine.closed, enumerable: true },
  });
  return Object.freeze(limiter) as Limiter;
}
