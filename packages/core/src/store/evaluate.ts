import { type ConcurrencyState, concurrency } from "../kinds/concurrency.js";
import { type FixedWindowState, fixedWindow } from "../kinds/fixed-window.js";
import { type PoolState, pool } from "../kinds/pool.js";
import { type SlidingWindowState, slidingWindow } from "../kinds/sliding-window.js";
import { type TokenBucketState, tokenBucket } from "../kinds/token-bucket.js";
import type { KindMath, StateBase } from "../kinds/types.js";
import type { CompiledPolicy } from "../policy/compile.js";
import { configuredLimit } from "../policy/compile.js";
import { boundsCover } from "../time-zone.js";
import { BOUNDS_NEEDED, RESULT_HEADER, RESULT_STRIDE } from "./answer.js";
import type { StoreRequest } from "./contract.js";

/** The stored state of one policy, whatever its kind. */
export type PolicyStateRecord =
  | TokenBucketState
  | PoolState
  | FixedWindowState
  | SlidingWindowState
  | ConcurrencyState;

// biome-ignore lint/suspicious/noExplicitAny: one table over the five kinds' math
type AnyMath = KindMath<any, any>;

/**
 * The math of a policy's kind. A switch keeps each call site monomorphic, which V8 rewards: a
 * table lookup made every call through it megamorphic (measured: ~25% of a decision).
 */
function mathOf(p: CompiledPolicy): AnyMath {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket;
    case "pool":
      return pool;
    case "fixedWindow":
      return fixedWindow;
    case "slidingWindow":
      return slidingWindow;
    case "concurrency":
      return concurrency;
  }
}

/** Limit in force: a learned limit that has not lapsed wins over the configured one. */
export function limitInForce(p: CompiledPolicy, s: StateBase | undefined, nowMs: number): number {
  return s !== undefined && s.learnedLimit > 0 && nowMs < s.learnedLimitUntilMs
    ? s.learnedLimit
    : configuredLimit(p);
}

/** What `evaluate()` decided: the answer, and the states to write back. */
export interface Evaluation {
  /** The StoreResult layout (see `StoreResult`). */
  result: number[];
  /**
   * Whether `states` must be written back: false for a refused take, a peek and a failed renew.
   * When true, `states[i]` is the new state or undefined where it is back to default (delete it).
   */
  write: boolean;
  /** One new state per policy (undefined where it is back to default). */
  states: (PolicyStateRecord | undefined)[];
}

// Scratch space: evaluate() is synchronous and never re-entered.
const limits: number[] = [];
const retries: number[] = [];

/**
 * The reference decision: every policy of the request at `nowMs`, all-or-nothing. `stored[i]` is
 * the state at `request.keys[i]` (undefined when absent). Every store must produce the same
 * `result` for the same stored state, request and clock.
 *
 * A request whose time-zone `windowBounds` do not cover `nowMs` is answered BOUNDS_NEEDED before
 * any state is looked at (see `boundsCover`).
 *
 * `reuse` (for a store that owns its state objects, like the memory store): stored objects are
 * advanced and changed in place and returned in `states`, so an unchanged key needs no write.
 * Without it, `stored` is never mutated.
 */
export function evaluate(
  request: StoreRequest,
  stored: readonly (PolicyStateRecord | undefined)[],
  nowMs: number,
  reuse = false,
): Evaluation {
  const { policies, op, cost } = request;
  const n = policies.length;
  if (request.windowBounds !== undefined && !boundsCover(request.windowBounds, nowMs)) {
    return boundsNeeded(n, nowMs);
  }
  const states = new Array<PolicyStateRecord | undefined>(n);
  const result = new Array<number>(RESULT_HEADER + RESULT_STRIDE * n);
  let allowed = 1;
  let leaseExp = 0;
  let write = true;

  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    // State past its due is back to default, whether or not a store has dropped it yet (Redis
    // expires it then; a later learned limit must not see it).
    const kept = stored[i];
    const prev = kept !== undefined && kept.dueMs < nowMs ? undefined : kept;
    let limit = limitInForce(p, prev, nowMs);
    const obs = op === "reconcile" ? request.observations?.[i] : undefined;
    // A lapsed learned limit is forgotten.
    let learned =
      prev !== undefined && prev.learnedLimit > 0 && nowMs < prev.learnedLimitUntilMs
        ? prev.learnedLimit
        : 0;
    let learnedUntil = learned > 0 ? prev!.learnedLimitUntilMs : 0;
    if (obs?.limit !== undefined) {
      learned = obs.limit;
      learnedUntil = nowMs + request.learnedLimitTtlMs;
      limit = learned;
    }
    const s = mathOf(p).load(
      prev,
      p,
      limit,
      nowMs,
      request.windowBounds?.[i],
      reuse,
    ) as PolicyStateRecord;
    s.learnedLimit = learned;
    s.learnedLimitUntilMs = learnedUntil;
    states[i] = s;
    limits[i] = limit;
    retries[i] = 0;
  }

  switch (op) {
    case "take":
    case "peek": {
      const c = op === "peek" ? 1 : cost;
      for (let i = 0; i < n; i++) {
        const p = policies[i]!;
        if (p.kind === "concurrency" && !(op === "take" && request.acquire)) continue;
        const r = mathOf(p).check(states[i], p, limits[i]!, c, nowMs);
        retries[i] = r;
        if (r !== 0) allowed = 0;
      }
      if (op === "peek" || allowed === 0) {
        write = false;
        break;
      }
      for (let i = 0; i < n; i++) {
        const p = policies[i]!;
        if (p.kind === "concurrency") {
          // A plain take leaves slots alone; tryAcquire takes one of each.
          if (!request.acquire) continue;
          const exp = concurrency.acquire(
            states[i] as ConcurrencyState,
            p,
            request.leaseId!,
            nowMs,
          );
          if (leaseExp === 0 || exp < leaseExp) leaseExp = exp;
        } else mathOf(p).charge(states[i], p, limits[i]!, cost, nowMs);
      }
      break;
    }
    case "refund":
      for (let i = 0; i < n; i++) {
        const p = policies[i]!;
        mathOf(p).refund(states[i], p, limits[i]!, cost, nowMs);
      }
      break;
    case "reconcile":
      for (let i = 0; i < n; i++) {
        const p = policies[i]!;
        const obs = request.observations?.[i];
        if (obs !== undefined) mathOf(p).reconcile(states[i], p, limits[i]!, obs, nowMs);
      }
      break;
    case "release":
      for (let i = 0; i < n; i++) {
        if (policies[i]!.kind === "concurrency") {
          concurrency.release(states[i] as ConcurrencyState, request.leaseId!);
        }
      }
      break;
    case "renew": {
      for (let i = 0; i < n; i++) {
        if (
          policies[i]!.kind === "concurrency" &&
          !(states[i] as ConcurrencyState).leases.has(request.leaseId!)
        ) {
          allowed = 0;
        }
      }
      if (allowed === 0) {
        write = false;
        break;
      }
      for (let i = 0; i < n; i++) {
        const p = policies[i]!;
        if (p.kind !== "concurrency") continue;
        const exp = concurrency.renew(
          states[i] as ConcurrencyState,
          p,
          request.leaseId!,
          request.leaseTtlMs,
          nowMs,
        );
        if (leaseExp === 0 || exp < leaseExp) leaseExp = exp;
      }
      break;
    }
    case "reset":
      for (let i = 0; i < n; i++) states[i] = undefined;
      break;
  }

  result[0] = allowed;
  result[1] = nowMs;
  result[2] = leaseExp;
  result[3] = 0;
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    const s = states[i];
    const o = RESULT_HEADER + RESULT_STRIDE * i;
    const limit = s === undefined ? configuredLimit(p) : limits[i]!;
    if (s === undefined) {
      result[o] = limit;
      result[o + 1] = limit;
      result[o + 2] = nowMs;
    } else {
      const m = mathOf(p);
      result[o] = limit;
      result[o + 1] = m.remaining(s, p, limit, nowMs);
      result[o + 2] = m.resetAt(s, p, limit, nowMs);
      if (write) {
        const idle = m.isIdle(s, p, limit, nowMs);
        if (idle && s.learnedLimit === 0) states[i] = undefined;
        else {
          // State kept for a learned limit lives until the limit lapses (what was consumed
          // refills the same whatever the limit, so it needs no longer).
          const learnedDue = s.learnedLimit > 0 ? s.learnedLimitUntilMs : 0;
          s.dueMs = Math.max(idle ? nowMs : result[o + 2]!, learnedDue);
        }
      }
    }
    result[o + 3] = retries[i]!;
    result[o + 4] = retries[i] !== 0 ? 1 : 0;
  }
  return { result, write, states };
}

/** The answer of a request whose time-zone bounds miss the store's clock: nothing applied. */
function boundsNeeded(n: number, nowMs: number): Evaluation {
  const result = new Array<number>(RESULT_HEADER + RESULT_STRIDE * n).fill(0);
  result[0] = BOUNDS_NEEDED;
  result[1] = nowMs;
  return { result, write: false, states: new Array<PolicyStateRecord | undefined>(n) };
}
