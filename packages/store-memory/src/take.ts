import {
  boundsCover,
  type ConcurrencyState,
  concurrency as concurrencyMath,
  type FixedWindowState,
  fixedWindow as fixedWindowMath,
  type PolicyStateRecord,
  type PoolState,
  pool as poolMath,
  type SlidingWindowState,
  type StoreRequest,
  slidingWindow as slidingWindowMath,
  type TokenBucketState,
  tokenBucket as tokenBucketMath,
} from "@sluice/core/store";
import type { LocalAnswer } from "./local-answer.js";

/**
 * `dueMs` of a state object no longer held for its key (dropped or replaced): a handle the engine
 * kept for it must look the key up again. Held state never has a negative due.
 */
export const DROPPED = -1;

/**
 * Writes one key's state back after a decision that wrote: `s` undefined (back to default)
 * deletes it. An existing state changed in place needs no set, unless `lru` asks for every
 * written key to move to the recent end (delete + set). A state no longer held is marked DROPPED.
 * Returns what the key holds now.
 */
export function writeBack(
  entries: Map<string, PolicyStateRecord>,
  key: string,
  prev: PolicyStateRecord | undefined,
  s: PolicyStateRecord | undefined,
  lru: boolean,
): PolicyStateRecord | undefined {
  if (s === undefined) {
    if (prev !== undefined) {
      entries.delete(key);
      prev.dueMs = DROPPED;
    }
  } else if (s !== prev || lru) {
    if (lru && prev !== undefined) entries.delete(key);
    entries.set(key, s);
    if (prev !== undefined && prev !== s) prev.dueMs = DROPPED;
  }
  return s;
}

/**
 * A take or a peek without a lease, decided exactly as `evaluate()` decides it with `reuse`, by
 * the same kind math, straight into `answer`: nothing is allocated but new state.
 *
 * `handles` holds, per policy, the state object the engine last saw for its key: used as long as
 * it is still the one held (its due is not DROPPED), else the key is looked up in `entries`. A
 * decision that writes (an admitted take) writes its states back to `entries` in the same pass and
 * leaves each key's state in `handles`; `lru` asks for every written key to move to the recent end.
 * `states` is scratch for the state of each policy between the check and the charge. Returns
 * whether the decision wrote (false for a peek or a refusal).
 */
export const decideTake = takeDecider();

/**
 * Builds `decideTake` inside a function whose constants hold the kinds' math and the helpers: V8
 * folds a constant of the enclosing function into the compiled code, where a module binding (an
 * import, or a top-level constant, which the bundler turns into a `var`) is read and checked on
 * every use (is it initialised, is it still the same object, is each function on it still the one
 * inlined).
 */
function takeDecider() {
  const tokenBucket = tokenBucketMath;
  const pool = poolMath;
  const fixedWindow = fixedWindowMath;
  const slidingWindow = slidingWindowMath;
  const concurrency = concurrencyMath;
  const keep = writeBack;

  // Each phase switches once per policy and calls that kind's functions by name: V8 then inlines
  // the hot kinds' math into the loop, where a call through a table of the five kinds (or a helper
  // per step) stays a call per step.

  /**
   * Carries the learned limit in force over to the state just loaded. Written only when it changes:
   * most takes learn nothing, and a store into a held state costs more than the read.
   */
  const learn = <S extends PolicyStateRecord>(s: S, learned: number, untilMs: number): S => {
    if (s.learnedLimit !== learned || s.learnedLimitUntilMs !== untilMs) {
      s.learnedLimit = learned;
      s.learnedLimitUntilMs = untilMs;
    }
    return s;
  };

  function decideTake(
    request: StoreRequest,
    handles: unknown[],
    clock: () => number,
    entries: Map<string, PolicyStateRecord>,
    lru: boolean,
    states: PolicyStateRecord[],
    answer: LocalAnswer,
  ): boolean {
    const { policies, windowBounds, keys } = request;
    const stored = handles as (PolicyStateRecord | undefined)[];
    const n = policies.length;
    const peek = request.op === "peek";
    const cost = peek ? 1 : request.cost;
    // The clock is read here, not passed in: an argument would be boxed into a heap number.
    answer.start(n, Math.floor(clock()));
    // The clock as the answer holds it, a double: every time the math derives from it stays an
    // unboxed double (a tagged number merged with doubles makes V8 box each merged value).
    const now = answer.nowMs;
    // The answer's arrays, written here directly: through its methods V8 would reload and check
    // each array on every call.
    const counts = answer.counts;
    const times = answer.times;
    if (windowBounds !== undefined && !boundsCover(windowBounds, now)) {
      answer.needBounds();
      return false;
    }
    let allowed = true;
    for (let i = 0; i < n; i++) {
      const p = policies[i]!;
      let kept = stored[i];
      if (kept === undefined || kept.dueMs === DROPPED) {
        kept = entries.get(keys[i]!);
        stored[i] = kept;
      }
      // State past its due is back to default, whether or not the sweep has dropped it yet.
      const prev = kept !== undefined && kept.dueMs < now ? undefined : kept;
      const learned =
        prev !== undefined && prev.learnedLimit > 0 && now < prev.learnedLimitUntilMs
          ? prev.learnedLimit
          : 0;
      const until = learned > 0 ? prev!.learnedLimitUntilMs : 0;
      const bounds = windowBounds?.[i];
      let s: PolicyStateRecord;
      let limit: number;
      let retry = 0;
      switch (p.kind) {
        case "tokenBucket": {
          limit = learned > 0 ? learned : p.capacity;
          const t = tokenBucket.load(
            prev as TokenBucketState | undefined,
            p,
            limit,
            now,
            bounds,
            true,
          );
          retry = tokenBucket.check(learn(t, learned, until), p, limit, cost, now);
          s = t;
          break;
        }
        case "pool": {
          limit = learned > 0 ? learned : p.capacity;
          const t = pool.load(prev as PoolState | undefined, p, limit, now, bounds, true);
          retry = pool.check(learn(t, learned, until), p, limit, cost, now);
          s = t;
          break;
        }
        case "fixedWindow": {
          limit = learned > 0 ? learned : p.limit;
          const t = fixedWindow.load(
            prev as FixedWindowState | undefined,
            p,
            limit,
            now,
            bounds,
            true,
          );
          retry = fixedWindow.check(learn(t, learned, until), p, limit, cost, now);
          s = t;
          break;
        }
        case "slidingWindow": {
          limit = learned > 0 ? learned : p.limit;
          const t = slidingWindow.load(
            prev as SlidingWindowState | undefined,
            p,
            limit,
            now,
            bounds,
            true,
          );
          retry = slidingWindow.check(learn(t, learned, until), p, limit, cost, now);
          s = t;
          break;
        }
        case "concurrency":
          limit = learned > 0 ? learned : p.limit;
          // A plain take leaves slots alone: loaded (expired leases drop) but not checked.
          s = learn(
            concurrency.load(prev as ConcurrencyState | undefined, p, limit, now, bounds, true),
            learned,
            until,
          );
          break;
      }
      states[i] = s;
      if (retry !== 0) allowed = false;
      counts[2 * i] = limit;
      times[2 * i + 1] = retry;
    }
    answer.allowed = allowed;
    const write = allowed && !peek;
    for (let i = 0; i < n; i++) {
      const p = policies[i]!;
      const s = states[i]!;
      const limit = counts[2 * i]!;
      let idle = false;
      // Each case hands its values to the answer itself, and the due below reads the reset back
      // from it: merged after the switch, the kinds' resets would be boxed (a heap number each).
      switch (p.kind) {
        case "tokenBucket": {
          const t = s as TokenBucketState;
          if (write) tokenBucket.charge(t, p, limit, cost, now);
          counts[2 * i + 1] = tokenBucket.remaining(t, p, limit, now);
          times[2 * i] = tokenBucket.resetAt(t, p, limit, now);
          if (write) idle = tokenBucket.isIdle(t, p, limit, now);
          break;
        }
        case "pool": {
          const t = s as PoolState;
          if (write) pool.charge(t, p, limit, cost, now);
          counts[2 * i + 1] = pool.remaining(t, p, limit, now);
          times[2 * i] = pool.resetAt(t, p, limit, now);
          if (write) idle = pool.isIdle(t, p, limit, now);
          break;
        }
        case "fixedWindow": {
          const t = s as FixedWindowState;
          if (write) fixedWindow.charge(t, p, limit, cost, now);
          counts[2 * i + 1] = fixedWindow.remaining(t, p, limit, now);
          times[2 * i] = fixedWindow.resetAt(t, p, limit, now);
          if (write) idle = fixedWindow.isIdle(t, p, limit, now);
          break;
        }
        case "slidingWindow": {
          const t = s as SlidingWindowState;
          if (write) slidingWindow.charge(t, p, limit, cost, now);
          counts[2 * i + 1] = slidingWindow.remaining(t, p, limit, now);
          times[2 * i] = slidingWindow.resetAt(t, p, limit, now);
          if (write) idle = slidingWindow.isIdle(t, p, limit, now);
          break;
        }
        case "concurrency": {
          const t = s as ConcurrencyState;
          counts[2 * i + 1] = concurrency.remaining(t, p, limit, now);
          times[2 * i] = concurrency.resetAt(t, p, limit, now);
          if (write) idle = concurrency.isIdle(t, p, limit, now);
          break;
        }
      }
      if (write) {
        // Back to default (nothing held for a learned limit): deleted.
        let held: PolicyStateRecord | undefined;
        if (!idle || s.learnedLimit !== 0) {
          // State kept for a learned limit lives until the limit lapses.
          const learnedDue = s.learnedLimit > 0 ? s.learnedLimitUntilMs : 0;
          const due = Math.max(idle ? now : times[2 * i]!, learnedDue);
          // A window's due stays put for its whole length: skip the store into a held state.
          if (s.dueMs !== due) s.dueMs = due;
          held = s;
        }
        const kept = stored[i];
        // A held state changed in place stays the handle: no store into the handles.
        if (held !== kept || lru) stored[i] = keep(entries, keys[i]!, kept, held, lru);
      }
    }
    return write;
  }

  return decideTake;
}
