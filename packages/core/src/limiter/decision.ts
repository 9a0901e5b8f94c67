import { type CompiledPolicy, configuredLimit } from "../policy/compile.js";
import type { StoreAnswer } from "../store/index.js";

/** One policy's part of a Decision. */
export interface PolicyState {
  /** The policy's name. */
  readonly name: string;
  /** The policy's kind (`tokenBucket`, `pool`, `fixedWindow`, `slidingWindow`, `concurrency`). */
  readonly kind: string;
  /** Capacity or limit in force (a learned limit wins). */
  readonly limit: number;
  /** What is left after this call (a concurrency policy: free slots). */
  readonly remaining: number;
  /** When this policy is back to its full limit (epoch ms, store clock). */
  readonly resetAtMs: number;
  /** Rate policies: the window's length, or the time to refill from empty to full. */
  readonly windowMs?: number;
}

/**
 * The answer to `take`, `peek`, `wait` or `tryAcquire`. Being over a limit is a Decision with
 * `allowed: false`, never an exception.
 */
export interface Decision {
  /**
   * Whether the request is admitted (for `take`, charged to every policy; for `peek`, whether a take
   * of cost 1 would be).
   */
  readonly allowed: boolean;
  /** Least remaining over the policies this call charges, after it (Infinity if none). */
  readonly remaining: number;
  /** 0 when allowed; Infinity when the cost can never fit. */
  readonly retryAfterMs: number;
  /** Names of the policies that refused. */
  readonly blockedBy: readonly string[];
  /** Decided without the primary store (see onStoreError). */
  readonly degraded?: true;
  /** Every policy in spec order (a concurrency policy reports free slots). */
  readonly policies: readonly PolicyState[];
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Builds a Decision from a store's answer. `slots`: whether concurrency policies count toward
 * `remaining` (tryAcquire) or only report their free slots (take, peek).
 */
export function toDecision(
  policies: readonly CompiledPolicy[],
  answer: StoreAnswer,
  slots: boolean,
  degraded: boolean,
): Decision {
  const n = policies.length;
  const states = new Array<PolicyState>(n);
  let remaining = Number.POSITIVE_INFINITY;
  let retryAfterMs = 0;
  let blockedBy = NONE;
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    const left = answer.remaining(i);
    // One test of the kind per policy, each branch building its own shape.
    if (p.kind !== "concurrency") {
      states[i] = {
        name: p.name,
        kind: p.kind,
        limit: answer.limit(i),
        remaining: left,
        resetAtMs: answer.resetAtMs(i),
        windowMs: p.windowMs,
      };
      if (left < remaining) remaining = left;
    } else {
      states[i] = {
        name: p.name,
        kind: p.kind,
        limit: answer.limit(i),
        remaining: left,
        resetAtMs: answer.resetAtMs(i),
      };
      if (slots && left < remaining) remaining = left;
    }
    if (answer.blocked(i)) {
      if (blockedBy === NONE) blockedBy = [];
      (blockedBy as string[]).push(p.name);
      const wait = answer.retryAfterMs(i);
      retryAfterMs = wait < 0 ? Number.POSITIVE_INFINITY : Math.max(retryAfterMs, wait);
    }
  }
  const allowed = answer.allowed;
  const decision: { -readonly [K in keyof Decision]: Decision[K] } = {
    allowed,
    remaining,
    retryAfterMs: allowed ? 0 : retryAfterMs,
    blockedBy,
    policies: states,
  };
  if (degraded) decision.degraded = true;
  return decision;
}

/** Retry hint of a decision refused because the store failed (onStoreError "deny"). */
export const DEGRADED_RETRY_MS = 250;

/** A decision made without any store (onStoreError "deny" or "allow"). */
export function degradedDecision(
  policies: readonly CompiledPolicy[],
  allowed: boolean,
  slots: boolean,
  nowMs: number,
): Decision {
  let remaining = Number.POSITIVE_INFINITY;
  const states = policies.map((p) => {
    const limit = configuredLimit(p);
    const left = allowed ? limit : 0;
    if ((slots || p.kind !== "concurrency") && left < remaining) remaining = left;
    const resetAtMs = allowed ? nowMs : nowMs + DEGRADED_RETRY_MS;
    return p.kind === "concurrency"
      ? { name: p.name, kind: p.kind, limit, remaining: left, resetAtMs }
      : { name: p.name, kind: p.kind, limit, remaining: left, resetAtMs, windowMs: p.windowMs };
  });
  return {
    allowed,
    remaining,
    retryAfterMs: allowed ? 0 : DEGRADED_RETRY_MS,
    blockedBy: NONE,
    degraded: true,
    policies: states,
  };
}

/** Largest retry among blocked rate policies, and whether a concurrency policy blocked. */
export function blockers(
  policies: readonly CompiledPolicy[],
  answer: StoreAnswer,
): { rateRetryMs: number; slotBlocked: boolean; slotRetryMs: number } {
  let rateRetryMs = 0;
  let slotRetryMs = 0;
  let slotBlocked = false;
  for (let i = 0; i < policies.length; i++) {
    if (!answer.blocked(i)) continue;
    const retry = answer.retryAfterMs(i);
    const wait = retry < 0 ? Number.POSITIVE_INFINITY : retry;
    if (policies[i]!.kind === "concurrency") {
      slotBlocked = true;
      slotRetryMs = Math.max(slotRetryMs, wait);
    } else rateRetryMs = Math.max(rateRetryMs, wait);
  }
  return { rateRetryMs, slotBlocked, slotRetryMs };
}
