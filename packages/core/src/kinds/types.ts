import type { CompiledPolicy } from "../policy/compile.js";

/**
 * Fields every stored policy state carries, whatever its kind: a limit learned through reconcile
 * and when it lapses, and when the state is back to default.
 */
export interface StateBase {
  /** Learned limit from reconcile (0 = none). */
  learnedLimit: number;
  /** Epoch ms at which the learned limit lapses. */
  learnedLimitUntilMs: number;
  /** Epoch ms from which the state is back to default if nothing touches it (for sweeping). */
  dueMs: number;
}

/**
 * What a server told us about one policy (reconcile), validated: integers >= 0 (limit >= 1).
 * The math's own type, so the kinds never depend on the store wire format.
 */
export interface KindObservation {
  /** The server admits at most this many more (lowers local state, never raises it). */
  readonly remaining: number | undefined;
  /** The server's limit, learned for this key. */
  readonly limit: number | undefined;
  /** When the server's window resets (epoch ms). */
  readonly resetAtMs: number | undefined;
}

/**
 * The math of one policy kind. `load` returns the state at `nowMs` (a fresh object unless
 * `reuse`), the other functions mutate what `load` returned. Retry values: 0 = admitted,
 * > 0 = ms until it could be, -1 = never (the cost exceeds the limit).
 */
export interface KindMath<P extends CompiledPolicy, S extends StateBase> {
  /**
   * `reuse`: advance `stored` in place and return it (the memory store owns its objects; advancing
   * to `nowMs` changes the representation, never the meaning).
   */
  load(
    stored: S | undefined,
    p: P,
    limit: number,
    nowMs: number,
    bounds: readonly number[] | undefined,
    reuse: boolean,
  ): S;
  /** How long until `cost` fits (ms): 0 when it fits now, -1 when it never can (above `limit`). */
  check(s: S, p: P, limit: number, cost: number, nowMs: number): number;
  /** Charges `cost` to the state (after `check` said it fits). */
  charge(s: S, p: P, limit: number, cost: number, nowMs: number): void;
  /** Gives `cost` back, never above `limit`. */
  refund(s: S, p: P, limit: number, cost: number, nowMs: number): void;
  /** Folds a server's observation into the state. */
  reconcile(s: S, p: P, limit: number, obs: KindObservation, nowMs: number): void;
  /** What is left now, at `limit`. */
  remaining(s: S, p: P, limit: number, nowMs: number): number;
  /** When the policy is back to its full limit (nowMs when it already is). */
  resetAt(s: S, p: P, limit: number, nowMs: number): number;
  /** True when the kind-specific part is at its default (nothing consumed, nothing held). */
  isIdle(s: S, p: P, limit: number, nowMs: number): boolean;
}
