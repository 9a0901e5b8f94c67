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
 * A limiter over one store and one list of policies, from {@link createLimiter}. Every method is
 * bound: `keys.map(limiter.take)` and handing `limiter.take` on as a callback work.
 *
 * Keys are a string (`"user-42"`, meaning `{ id: "user-42" }`) or an object of string fields
 * (`{ tenant: "acme", token: "pat-1" }`) that policies' `scope` select from. A malformed key or
 * cost throws `SluiceError` `INVALID_ARGUMENT` before any store call. When the store fails,
 * `onStoreError` decides what a call yields.
 */
export interface Limiter {
  /**
   * One atomic decision over every rate policy (every kind but `concurrency`): admitted by all
   * and charged to all, or charged to none. A cost above a policy's limit is refused with
   * `retryAfterMs: Infinity` and charges nothing.
   *
   * @param key - whose state to charge.
   * @param options - `cost` (default 1).
   * @returns the Decision; being over a limit is `allowed: false`, not an exception.
   * @throws SluiceError `INVALID_ARGUMENT` for a malformed key or cost; `STORE_UNAVAILABLE` /
   * `STORE_TIMEOUT` under `onStoreError: "throw"`, or for a non-retryable store error.
   *
   * @example
   * ```ts
   * const decision = await limiter.take("user-42");
   * if (!decision.allowed) console.log(`retry in ${decision.retryAfterMs} ms`);
   * ```
   */
  take(key: Key, options?: TakeOptions): Promise<Decision>;
  /**
   * The current state, charging nothing.
   *
   * @param key - whose state to read.
   * @returns a Decision whose `allowed` says whether a take of cost 1 would be admitted now and
   * whose `remaining` is what is left now.
   * @throws SluiceError as `take` does.
   */
  peek(key: Key): Promise<Decision>;
  /**
   * Waits until a take of `cost` is admitted, and makes it. Waiters of one key are served in
   * order within this process.
   *
   * @param key - whose state to charge.
   * @param options - `cost` (default 1), `signal` to abort, `timeoutMs` (default Infinity).
   * @returns the admitting Decision.
   * @throws LimitTimeoutError (`WAIT_TIMEOUT`) at once when the earliest possible admission is
   * beyond `timeoutMs` (always for a cost that can never fit); `signal.reason` on abort; a store
   * error under `onStoreError: "throw"`.
   *
   * @example
   * ```ts
   * await limiter.wait("user-42", { timeoutMs: 5_000 });
   * await callTheApi();
   * ```
   */
  wait(key: Key, options?: WaitOptions): Promise<Decision>;
  /**
   * A take of the rate policies and one slot of every `concurrency` policy, atomically, in one
   * store call: all or nothing.
   *
   * @param key - whose state to charge.
   * @param options - `cost` charged to the rate policies (default 1).
   * @returns the Decision, and the Lease when admitted (`null` when refused).
   * @throws SluiceError as `take` does.
   */
  tryAcquire(key: Key, options?: TakeOptions): Promise<{ decision: Decision; lease: Lease | null }>;
  /**
   * Waits like `wait` for rate capacity and a slot of every `concurrency` policy. A slot can free
   * at any moment, so for slots `timeoutMs` is a deadline rather than a prediction.
   *
   * @param key - whose state to charge.
   * @param options - `cost`, `signal`, `timeoutMs` as for `wait`.
   * @returns the Lease; release it when the work is done.
   * @throws as `wait` does.
   */
  acquire(key: Key, options?: WaitOptions): Promise<Lease>;
  /**
   * `acquire`, then `fn(lease)`, then releases the lease whatever happens.
   *
   * @param key - whose state to charge.
   * @param fn - the work to do while holding the lease.
   * @param options - `cost`, `signal`, `timeoutMs` as for `wait`.
   * @returns what `fn` returns.
   * @throws as `acquire` does, or what `fn` throws.
   *
   * @example
   * ```ts
   * const body = await limiter.run("user-42", () => fetch(url).then((r) => r.text()));
   * ```
   */
  run<T>(key: Key, fn: (lease: Lease) => T | Promise<T>, options?: WaitOptions): Promise<T>;
  /**
   * Gives back a charge that did not reach its target (never above full), e.g. a request that
   * failed before the server counted it.
   *
   * @param key - whose state to credit.
   * @param options - `cost` to give back (default 1).
   * @throws SluiceError as `take` does.
   */
  refund(key: Key, options?: TakeOptions): Promise<void>;
  /**
   * Folds what a server reported about its limits into the local state: `remaining` lowers it
   * (never raises it), `limit` replaces the configured limit for this key, `resetAtMs` aligns a
   * fixed window. An observation naming an unknown policy is ignored (event
   * `observationIgnored`).
   *
   * @param key - whose state to correct.
   * @param observations - e.g. from `parseRateLimitHeaders(response.headers)`.
   * @throws SluiceError `INVALID_ARGUMENT` for a malformed observation.
   */
  reconcile(key: Key, observations: Observation | readonly Observation[]): Promise<void>;
  /**
   * Forgets all state of the key: every policy is back to full.
   *
   * @param key - whose state to forget.
   */
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
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /**
   * Subscribes to a limiter event (see {@link LimiterEvents}); every event is also published on
   * the `node:diagnostics_channel` channel named in `diagnosticsChannels`.
   *
   * @param event - `decision`, `storeError`, `observationIgnored`, `fallback`, `storeDown` or `storeUp`.
   * @param listener - called synchronously with the event's payload; an exception it throws is
   * reported asynchronously and does not affect the decision.
   * @returns a function that unsubscribes the listener.
   */
  on<E extends LimiterEventName>(
    event: E,
    listener: (payload: LimiterEvents[E]) => void,
  ): () => void;
  /** Unsubscribes a listener added with `on` (a no-op for one that is not subscribed). */
  off<E extends LimiterEventName>(event: E, listener: (payload: LimiterEvents[E]) => void): void;
}

/** The engine behind each Limiter this module created (for the tenant registry, not exported). */
const engines = new WeakMap<Limiter, LimiterEngine>();

/** The engine behind a Limiter from `createLimiter`. */
export function engineOf(limiter: Limiter): LimiterEngine {
  return engines.get(limiter)!;
}

/**
 * Creates a limiter over a store and a list of policies.
 *
 * @param options - `store`, `policies`, and optionally `prefix`, `partitionBy`, `onStoreError`,
 * `timeoutMs`, `learnedLimitTtlMs`, `breaker`.
 * @returns the Limiter.
 * @throws ConfigError (synchronously) for an invalid policy (paths start at `policies[i]`), an
 * unknown option or a bad option value.
 *
 * @example
 * ```ts
 * import { createLimiter } from "@sluice/core";
 * import { memoryStore } from "@sluice/store-memory";
 *
 * const limiter = createLimiter({
 *   store: memoryStore(),
 *   policies: [{ kind: "fixedWindow", name: "perMinute", limit: 60, window: "1m" }],
 * });
 * const { allowed, remaining } = await limiter.take("user-42");
 * ```
 */
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
  const frozen = Object.freeze(limiter) as Limiter;
  engines.set(frozen, engine);
  return frozen;
}
