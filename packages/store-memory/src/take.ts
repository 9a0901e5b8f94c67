import {
  boundsCover,
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

// Each phase switches once per policy and calls that kind's functions by name: V8 then inlines
// the hot kinds' math into the loop, where a call through a table of the five kinds (or a helper
// per step) stays a call per step.

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
 * Carries the learned limit in force over to the state just loaded. Written only when it changes:
 * most takes learn nothing, and a store into a held state costs more than the read.
 */
function learn<S extends PolicyStateRecord>(s: S, learned: number, untilMs: number): S {
  if (s.learnedLimit !== learned || s.learnedLimitUntilMs !== untilMs) {
    s.learnedLimit = learned;
    s.learnedLimitUntilMs = untilMs;
  }
  return s;
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
  if (windowBounds !== undefined && !boundsCover(windowBounds, nowMs)) {
    answer.needBounds();
    return false;
  }
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
    const until = learned > 0 ? prev!.learnedLimitUntilMs : 0;
    const limit = learned > 0 ? learned : configuredLimit(p);
    const bounds = windowBounds?.[i];
    let s: PolicyStateRecord;
    let retry = 0;
    switch (p.kind) {
      case "tokenBucket": {
        const t = tokenBucket.load(
          prev as TokenBucketState | undefined,
          p,
          limit,
          nowMs,
          bounds,
          true,
        );
        retry = tokenBucket.check(learn(t, learned, until), p, limit, cost, nowMs);
        s = t;
        break;
      }
      case "pool": {
        const t = pool.load(prev as PoolState | undefined, p, limit, nowMs, bounds, true);
        retry = pool.check(learn(t, learned, until), p, limit, cost, nowMs);
        s = t;
        break;
      }
      case "fixedWindow": {
        const t = fixedWindow.load(
          prev as FixedWindowState | undefined,
          p,
          limit,
          nowMs,
          bounds,
          true,
        );
        retry = fixedWindow.check(learn(t, learned, until), p, limit, cost, nowMs);
        s = t;
        break;
      }
      case "slidingWindow": {
        const t = slidingWindow.load(
          prev as SlidingWindowState | undefined,
          p,
          limit,
          nowMs,
          bounds,
          true,
        );
        retry = slidingWindow.check(learn(t, learned, until), p, limit, cost, nowMs);
        s = t;
        break;
      }
      case "concurrency":
        // A plain take leaves slots alone: loaded (expired leases drop) but not checked.
        s = learn(
          concurrency.load(prev as ConcurrencyState | undefined, p, limit, nowMs, bounds, true),
          learned,
          until,
        );
        break;
    }
    states[i] = s;
    if (retry !== 0) allowed = false;
    answer.setCheck(i, limit, retry);
  }
  answer.allowed = allowed;
  const write = allowed && !peek;
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    const s = states[i]!;
    const limit = answer.limit(i);
    let remaining: number;
    let resetAtMs: number;
    let idle = false;
    switch (p.kind) {
      case "tokenBucket": {
        const t = s as TokenBucketState;
        if (write) tokenBucket.charge(t, p, limit, cost, nowMs);
        remaining = tokenBucket.remaining(t, p, limit, nowMs);
        resetAtMs = tokenBucket.resetAt(t, p, limit, nowMs);
        if (write) idle = tokenBucket.isIdle(t, p, limit, nowMs);
        break;
      }
      case "pool": {
        const t = s as PoolState;
        if (write) pool.charge(t, p, limit, cost, nowMs);
        remaining = pool.remaining(t, p, limit, nowMs);
        resetAtMs = pool.resetAt(t, p, limit, nowMs);
        if (write) idle = pool.isIdle(t, p, limit, nowMs);
        break;
      }
      case "fixedWindow": {
        const t = s as FixedWindowState;
        if (write) fixedWindow.charge(t, p, limit, cost, nowMs);
        remaining = fixedWindow.remaining(t, p, limit, nowMs);
        resetAtMs = fixedWindow.resetAt(t, p, limit, nowMs);
        if (write) idle = fixedWindow.isIdle(t, p, limit, nowMs);
        break;
      }
      case "slidingWindow": {
        const t = s as SlidingWindowState;
        if (write) slidingWindow.charge(t, p, limit, cost, nowMs);
        remaining = slidingWindow.remaining(t, p, limit, nowMs);
        resetAtMs = slidingWindow.resetAt(t, p, limit, nowMs);
        if (write) idle = slidingWindow.isIdle(t, p, limit, nowMs);
        break;
      }
      case "concurrency": {
        const t = s as ConcurrencyState;
        remaining = concurrency.remaining(t, p, limit, nowMs);
        resetAtMs = concurrency.resetAt(t, p, limit, nowMs);
        if (write) idle = concurrency.isIdle(t, p, limit, nowMs);
        break;
      }
    }
    answer.setState(i, remaining, resetAtMs);
    if (write) {
      if (idle && s.learnedLimit === 0) states[i] = undefined;
      else {
        // State kept for a learned limit outlives its lapse by the kind's refill span.
        const learnedDue = s.learnedLimit > 0 ? s.learnedLimitUntilMs + refillSpanMs(p) : 0;
        const due = Math.max(idle ? nowMs : resetAtMs, learnedDue);
        // A window's due stays put for its whole length: skip the store into a held state.
        if (s.dueMs !== due) s.dueMs = due;
      }
    }
  }
  return write;
}
