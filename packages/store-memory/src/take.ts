import {
  type CompiledPolicy,
  type ConcurrencyState,
  concurrency,
  configuredLimit,
  type FixedWindowState,
  fixedWindow,
  type PolicyStateRecord,
  type PoolState,
  pool,
  type SlidingWindowState,
  type StoreRequest,
  slidingWindow,
  type TokenBucketState,
  tokenBucket,
} from "@sluice/core/store";
import type { LocalAnswer } from "./local-answer.js";

// One switch per step, so that every call site names one kind's function: V8 inlines those,
// where one call through a table of the five kinds stays a slow polymorphic call.

function load(
  p: CompiledPolicy,
  prev: PolicyStateRecord | undefined,
  limit: number,
  nowMs: number,
  bounds: readonly number[] | undefined,
): PolicyStateRecord {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.load(prev as TokenBucketState | undefined, p, limit, nowMs, bounds, true);
    case "pool":
      return pool.load(prev as PoolState | undefined, p, limit, nowMs, bounds, true);
    case "fixedWindow":
      return fixedWindow.load(prev as FixedWindowState | undefined, p, limit, nowMs, bounds, true);
    case "slidingWindow":
      return slidingWindow.load(
        prev as SlidingWindowState | undefined,
        p,
        limit,
        nowMs,
        bounds,
        true,
      );
    case "concurrency":
      return concurrency.load(prev as ConcurrencyState | undefined, p, limit, nowMs, bounds, true);
  }
}

/** Retry for `cost`: 0 admitted, > 0 ms until it could be, -1 never. Slots are not a take's. */
function check(
  p: CompiledPolicy,
  s: PolicyStateRecord,
  limit: number,
  cost: number,
  nowMs: number,
): number {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.check(s as TokenBucketState, p, limit, cost, nowMs);
    case "pool":
      return pool.check(s as PoolState, p, limit, cost, nowMs);
    case "fixedWindow":
      return fixedWindow.check(s as FixedWindowState, p, limit, cost, nowMs);
    case "slidingWindow":
      return slidingWindow.check(s as SlidingWindowState, p, limit, cost, nowMs);
    case "concurrency":
      return 0;
  }
}

function charge(
  p: CompiledPolicy,
  s: PolicyStateRecord,
  limit: number,
  cost: number,
  nowMs: number,
): void {
  switch (p.kind) {
    case "tokenBucket":
      tokenBucket.charge(s as TokenBucketState, p, limit, cost, nowMs);
      break;
    case "pool":
      pool.charge(s as PoolState, p, limit, cost, nowMs);
      break;
    case "fixedWindow":
      fixedWindow.charge(s as FixedWindowState, p, limit, cost, nowMs);
      break;
    case "slidingWindow":
      slidingWindow.charge(s as SlidingWindowState, p, limit, cost, nowMs);
      break;
    case "concurrency":
      // A plain take leaves slots alone.
      break;
  }
}

function remaining(p: CompiledPolicy, s: PolicyStateRecord, limit: number, nowMs: number): number {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.remaining(s as TokenBucketState, p, limit, nowMs);
    case "pool":
      return pool.remaining(s as PoolState, p, limit, nowMs);
    case "fixedWindow":
      return fixedWindow.remaining(s as FixedWindowState, p, limit, nowMs);
    case "slidingWindow":
      return slidingWindow.remaining(s as SlidingWindowState, p, limit, nowMs);
    case "concurrency":
      return concurrency.remaining(s as ConcurrencyState, p, limit, nowMs);
  }
}

function resetAt(p: CompiledPolicy, s: PolicyStateRecord, limit: number, nowMs: number): number {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.resetAt(s as TokenBucketState, p, limit, nowMs);
    case "pool":
      return pool.resetAt(s as PoolState, p, limit, nowMs);
    case "fixedWindow":
      return fixedWindow.resetAt(s as FixedWindowState, p, limit, nowMs);
    case "slidingWindow":
      return slidingWindow.resetAt(s as SlidingWindowState, p, limit, nowMs);
    case "concurrency":
      return concurrency.resetAt(s as ConcurrencyState, p, limit, nowMs);
  }
}

function isIdle(p: CompiledPolicy, s: PolicyStateRecord, limit: number, nowMs: number): boolean {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.isIdle(s as TokenBucketState, p, limit, nowMs);
    case "pool":
      return pool.isIdle(s as PoolState, p, limit, nowMs);
    case "fixedWindow":
      return fixedWindow.isIdle(s as FixedWindowState, p, limit, nowMs);
    case "slidingWindow":
      return slidingWindow.isIdle(s as SlidingWindowState, p, limit, nowMs);
    case "concurrency":
      return concurrency.isIdle(s as ConcurrencyState, p, limit, nowMs);
  }
}

function refillSpanMs(p: CompiledPolicy): number {
  switch (p.kind) {
    case "tokenBucket":
      return tokenBucket.refillSpanMs(p);
    case "pool":
      return pool.refillSpanMs(p);
    case "fixedWindow":
      return fixedWindow.refillSpanMs(p);
    case "slidingWindow":
      return slidingWindow.refillSpanMs(p);
    case "concurrency":
      return concurrency.refillSpanMs(p);
  }
}

/**
 * A take or a peek without a lease, decided exactly as `evaluate()` decides it with `reuse`, by
 * the same kind math, straight into `answer`: nothing is allocated but new state. `states`
 * receives each key's state after the decision (undefined: back to default, delete it); the
 * return value says whether they must be written back (false for a peek or a refusal).
 */
export function decideTake(
  request: StoreRequest,
  stored: readonly (PolicyStateRecord | undefined)[],
  nowMs: number,
  states: (PolicyStateRecord | undefined)[],
  answer: LocalAnswer,
): boolean {
  const { policies, windowBounds } = request;
  const n = policies.length;
  const peek = request.op === "peek";
  const cost = peek ? 1 : request.cost;
  answer.start(n, nowMs);
  let allowed = true;
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    // State past its due is back to default, whether or not the sweep has dropped it yet.
    const kept = stored[i];
    const prev = kept !== undefined && kept.dueMs < nowMs ? undefined : kept;
    const learned =
      prev !== undefined && prev.learnedLimit > 0 && nowMs < prev.learnedLimitUntilMs
        ? prev.learnedLimit
        : 0;
    const limit = learned > 0 ? learned : configuredLimit(p);
    const s = load(p, prev, limit, nowMs, windowBounds?.[i]);
    s.learnedLimit = learned;
    s.learnedLimitUntilMs = learned > 0 ? prev!.learnedLimitUntilMs : 0;
    states[i] = s;
    const retry = check(p, s, limit, cost, nowMs);
    if (retry !== 0) allowed = false;
    answer.set(i, limit, 0, 0, retry);
  }
  answer.allowed = allowed;
  const write = allowed && !peek;
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    const s = states[i]!;
    const limit = answer.limit(i);
    if (write) charge(p, s, limit, cost, nowMs);
    const resetAtMs = resetAt(p, s, limit, nowMs);
    answer.set(i, limit, remaining(p, s, limit, nowMs), resetAtMs, answer.retryAfterMs(i));
    if (write) {
      const idle = isIdle(p, s, limit, nowMs);
      if (idle && s.learnedLimit === 0) states[i] = undefined;
      else {
        // State kept for a learned limit outlives its lapse by the kind's refill span.
        const learnedDue = s.learnedLimit > 0 ? s.learnedLimitUntilMs + refillSpanMs(p) : 0;
        s.dueMs = Math.max(idle ? nowMs : resetAtMs, learnedDue);
      }
    }
  }
  return write;
}
