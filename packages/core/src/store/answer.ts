import { SluiceError } from "../errors.js";

/**
 * The answer on the wire: a flat array of integers, cheap to return from Lua and SQL.
 *
 *   [0] allowed: 1 or 0 (take: charged to all; peek: a take of cost 1 would be admitted;
 *       renew: 1 if every slot was renewed, 0 if the lease is gone; other ops: 1); or
 *       BOUNDS_NEEDED (-2): the store's clock lies outside a list of `windowBounds` the request
 *       carries, so nothing was applied and every other value but [1] is 0; the engine sends the
 *       request again with bounds around [1]
 *   [1] store clock, epoch ms, at which the decision was made
 *   [2] lease expiry (take with acquire when allowed, renew when allowed), else 0
 *   [3] reserved, 0
 *   then for each policy i, at offset RESULT_HEADER + RESULT_STRIDE * i:
 *   [+0] limit in force (a live learned limit wins over the configured one)
 *   [+1] remaining after the op (tokenBucket: whole tokens left; concurrency: free slots)
 *   [+2] resetAtMs: when the policy is back to its full limit (the store clock if already full)
 *   [+3] retryAfterMs for the requested cost: 0 when this policy admits it, -1 when it never can
 *   [+4] blocked: 1 when this policy refused the request, else 0
 *
 * Read it with `readAnswer`; the reference producer is `evaluate()`.
 */
export type StoreResult = readonly number[];

/** Number of header values at the start of a StoreResult, before the per-policy values. */
export const RESULT_HEADER = 4;

/**
 * `[0]` of an answer that applied nothing because the store's clock is outside the time-zone
 * window bounds sent (a client clock, or a test clock, days from the store's). Negative like the
 * wire formats' -1 for a request past its deadline: not applied.
 */
export const BOUNDS_NEEDED = -2;

/** Number of values per policy in a StoreResult. */
export const RESULT_STRIDE = 5;

/** Length of an answer for `policyCount` policies. */
export const answerLength = (policyCount: number): number =>
  RESULT_HEADER + RESULT_STRIDE * policyCount;

/** One policy's part of an answer, as an object (for tests and tools; the engine uses accessors). */
export interface PolicyAnswer {
  /** Limit in force (a learned limit wins). */
  readonly limit: number;
  /** What is left after the call. */
  readonly remaining: number;
  /** When the policy is back to full (epoch ms, store clock). */
  readonly resetAtMs: number;
  /** How long until the cost would fit (ms); 0 when it fits. */
  readonly retryAfterMs: number;
  /** Whether this policy refused the call. */
  readonly blocked: boolean;
}

/**
 * A store's answer, typed. Header fields are read once; per-policy values are read through
 * accessors by policy index, so reading an answer allocates one object whatever the number of
 * policies. An in-process store answering `decideNow` may implement it with an object it reuses.
 */
export interface StoreAnswer {
  /** take: charged to every policy; peek: a take of cost 1 would be; renew: every slot renewed. */
  readonly allowed: boolean;
  /**
   * Nothing was applied: the store's clock (`nowMs`) is outside the time-zone window bounds the
   * request carried. Ask again with bounds around `nowMs`. Every per-policy value is 0.
   */
  readonly boundsNeeded: boolean;
  /** The store clock the decision was made at (epoch ms). */
  readonly nowMs: number;
  /** Expiry of the lease taken or renewed (epoch ms); 0 when none. */
  readonly leaseExpiresAtMs: number;
  /** Number of policies the answer covers. */
  readonly policyCount: number;
  /** Limit in force (a live learned limit wins over the configured one). */
  limit(i: number): number;
  /** Remaining after the op (a concurrency policy: free slots). */
  remaining(i: number): number;
  /** When the policy is back to its full limit (nowMs if it already is). */
  resetAtMs(i: number): number;
  /** For the requested cost: 0 when this policy admits it, -1 when it never can, else ms. */
  retryAfterMs(i: number): number;
  /** Whether this policy refused the request. */
  blocked(i: number): boolean;
}

class AnswerReader implements StoreAnswer {
  readonly allowed: boolean;
  readonly boundsNeeded: boolean;
  readonly nowMs: number;
  readonly leaseExpiresAtMs: number;

  constructor(
    private readonly result: StoreResult,
    readonly policyCount: number,
  ) {
    this.allowed = result[0] === 1;
    this.boundsNeeded = result[0] === BOUNDS_NEEDED;
    this.nowMs = result[1]!;
    this.leaseExpiresAtMs = result[2]!;
  }

  limit(i: number): number {
    return this.result[RESULT_HEADER + RESULT_STRIDE * i]!;
  }
  remaining(i: number): number {
    return this.result[RESULT_HEADER + RESULT_STRIDE * i + 1]!;
  }
  resetAtMs(i: number): number {
    return this.result[RESULT_HEADER + RESULT_STRIDE * i + 2]!;
  }
  retryAfterMs(i: number): number {
    return this.result[RESULT_HEADER + RESULT_STRIDE * i + 3]!;
  }
  blocked(i: number): boolean {
    return this.result[RESULT_HEADER + RESULT_STRIDE * i + 4] === 1;
  }
}

/** Policy `i` of an answer as an object (allocates: for tests and tools). */
export function policyAnswer(answer: StoreAnswer, i: number): PolicyAnswer {
  return {
    limit: answer.limit(i),
    remaining: answer.remaining(i),
    resetAtMs: answer.resetAtMs(i),
    retryAfterMs: answer.retryAfterMs(i),
    blocked: answer.blocked(i),
  };
}

/**
 * Types a store's answer for `policyCount` policies. Throws STORE_UNAVAILABLE (not retryable: a
 * store that answers in the wrong shape will do it again) when its length is not the layout's.
 */
export function readAnswer(result: StoreResult, policyCount: number): StoreAnswer {
  if (result.length !== RESULT_HEADER + RESULT_STRIDE * policyCount) {
    throw new SluiceError(
      "STORE_UNAVAILABLE",
      `store answered ${result.length} numbers for ${policyCount} policies (expected ${answerLength(policyCount)})`,
      { retryable: false },
    );
  }
  return new AnswerReader(result, policyCount);
}
