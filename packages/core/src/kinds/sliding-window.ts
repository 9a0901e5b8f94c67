import type { CompiledSlidingWindow } from "../policy/compile.js";
import type { KindMath, StateBase } from "./types.js";

/**
 * Sliding window counted in slots of `precisionMs`: an admission in slot s counts while
 * t < (s + 1) * precisionMs + windowMs, so it stops counting between `window` and
 * `window + precision` after it happened, and no span [t, t + window) ever holds more than limit.
 * `slots` ascending, `counts` parallel.
 */
export interface SlidingWindowState extends StateBase {
  /** Start of each slot that still counts (epoch ms, ascending). */
  slots: number[];
  /** Admissions in each slot of `slots` (same index). */
  counts: number[];
}

const expiresAt = (slot: number, p: CompiledSlidingWindow) =>
  (slot + 1) * p.precisionMs + p.windowMs;
const total = (s: SlidingWindowState) => {
  let n = 0;
  for (const c of s.counts) n += c;
  return n;
};

/** The reference math of the `slidingWindow` kind: admissions counted in slots of `precision`. */
export const slidingWindow: KindMath<CompiledSlidingWindow, SlidingWindowState> = {
  load(stored, p, _limit, now, _bounds, reuse) {
    if (stored === undefined)
      return { slots: [], counts: [], learnedLimit: 0, learnedLimitUntilMs: 0, dueMs: 0 };
    const minSlot = Math.floor((now - p.windowMs) / p.precisionMs);
    let drop = 0;
    while (drop < stored.slots.length && stored.slots[drop]! < minSlot) drop++;
    if (reuse) {
      if (drop > 0) {
        stored.slots.splice(0, drop);
        stored.counts.splice(0, drop);
      }
      return stored;
    }
    return { ...stored, slots: stored.slots.slice(drop), counts: stored.counts.slice(drop) };
  },
  check(s, p, limit, cost, now) {
    if (cost > limit) return -1;
    // Against limit - cost (exact): count + cost may pass 2^53 and round.
    const count = total(s);
    if (count <= limit - cost) return 0;
    let excess = count - (limit - cost);
    for (let i = 0; i < s.slots.length; i++) {
      excess -= s.counts[i]!;
      if (excess <= 0) return expiresAt(s.slots[i]!, p) - now;
    }
    return -1; // unreachable: cost <= limit
  },
  charge(s, p, _limit, cost, now) {
    addToSlot(s, Math.floor(now / p.precisionMs), cost);
  },
  refund(s, _p, _limit, cost) {
    for (let i = s.slots.length - 1; i >= 0 && cost > 0; i--) {
      const take = Math.min(cost, s.counts[i]!);
      s.counts[i]! -= take;
      cost -= take;
      if (s.counts[i] === 0) {
        s.slots.splice(i, 1);
        s.counts.splice(i, 1);
      }
    }
  },
  reconcile(s, p, limit, obs, now) {
    if (obs.remaining === undefined) return;
    const deficit = limit - obs.remaining - total(s);
    if (deficit <= 0) return;
    // Phantom admissions that stop counting at the server's reset (or after a window).
    let slot = Math.floor(now / p.precisionMs);
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now) {
      slot = Math.max(
        Math.ceil((obs.resetAtMs - p.windowMs) / p.precisionMs) - 1,
        Math.floor((now - p.windowMs) / p.precisionMs),
      );
    }
    addToSlot(s, slot, deficit);
  },
  remaining(s, _p, limit) {
    return Math.max(0, limit - total(s));
  },
  resetAt(s, p, _limit, now) {
    return s.slots.length === 0 ? now : expiresAt(s.slots[s.slots.length - 1]!, p);
  },
  isIdle(s) {
    return s.slots.length === 0;
  },
};

function addToSlot(s: SlidingWindowState, slot: number, n: number): void {
  let i = s.slots.length - 1;
  while (i >= 0 && s.slots[i]! > slot) i--;
  if (i >= 0 && s.slots[i] === slot) s.counts[i]! += n;
  else {
    s.slots.splice(i + 1, 0, slot);
    s.counts.splice(i + 1, 0, n);
  }
}
