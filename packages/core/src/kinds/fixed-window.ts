import type { CompiledFixedWindow } from "../policy/compile.js";
import { windowFromBounds } from "../time-zone.js";
import type { KindMath, StateBase } from "./types.js";

/** Fixed window: `count` admitted in the window [startMs, endMs). */
export interface FixedWindowState extends StateBase {
  /** Admitted in the current window (requests, or cost units). */
  count: number;
  /** Epoch ms the current window started (kept for inspection; no formula reads it). */
  startMs: number;
  /** Epoch ms the current window ends (a reconcile may move it to the server's reset). */
  endMs: number;
}

/**
 * The reference math of the `fixedWindow` kind: a count per window, calendar or first-use aligned.
 */
export const fixedWindow: KindMath<CompiledFixedWindow, FixedWindowState> = {
  load(stored, p, _limit, now, bounds, reuse) {
    if (stored !== undefined && stored.count > 0 && now < stored.endMs) {
      return reuse ? stored : { ...stored };
    }
    return openWindow(stored, p, now, bounds, reuse);
  },
  check(s, _p, limit, cost, now) {
    if (cost > limit) return -1;
    if (s.count + cost <= limit) return 0;
    return s.endMs - now;
  },
  charge(s, _p, _limit, cost) {
    s.count += cost;
  },
  refund(s, _p, _limit, cost) {
    s.count = Math.max(0, s.count - cost);
  },
  reconcile(s, _p, limit, obs, now) {
    // The server's reset ends the current window; later windows follow the policy's alignment.
    if (obs.resetAtMs !== undefined && obs.resetAtMs > now) s.endMs = obs.resetAtMs;
    if (obs.remaining !== undefined) s.count = Math.max(s.count, limit - obs.remaining);
  },
  remaining(s, _p, limit) {
    return Math.max(0, limit - s.count);
  },
  resetAt(s, _p, _limit, now) {
    return s.count <= 0 ? now : s.endMs;
  },
  isIdle(s) {
    return s.count <= 0;
  },
};

/**
 * The state of a window opened at `now` (`stored` is past its window or empty). Apart from `load`,
 * and its rarer cases apart from it: V8 inlines within a budget of bytecode per function, and
 * this function, inlined into the memory store's loop where windows open, would otherwise use up
 * budget that the loop's every-take math needs.
 */
function openWindow(
  stored: FixedWindowState | undefined,
  p: CompiledFixedWindow,
  now: number,
  bounds: readonly number[] | undefined,
  reuse: boolean,
): FixedWindowState {
  const s = stored !== undefined && reuse ? stored : newWindow(stored);
  // dueMs stays: it still covers a learned limit kept on this state.
  s.count = 0;
  if (p.align === "firstUse") {
    s.startMs = now;
    s.endMs = now + p.windowMs;
  } else if (bounds !== undefined) placeInBounds(s, bounds, p.windowMs, now);
  else {
    s.startMs = Math.floor(now / p.windowMs) * p.windowMs;
    s.endMs = s.startMs + p.windowMs;
  }
  return s;
}

/** A new state object for a window, keeping what `stored` holds for a learned limit. */
function newWindow(stored: FixedWindowState | undefined): FixedWindowState {
  return {
    count: 0,
    startMs: 0,
    endMs: 0,
    learnedLimit: stored?.learnedLimit ?? 0,
    learnedLimitUntilMs: stored?.learnedLimitUntilMs ?? 0,
    dueMs: stored?.dueMs ?? 0,
  };
}

/** The window of a time-zone policy around `now`, between the request's bounds. */
function placeInBounds(
  s: FixedWindowState,
  bounds: readonly number[],
  windowMs: number,
  now: number,
): void {
  const w = windowFromBounds(bounds, windowMs, now);
  s.startMs = w[0];
  s.endMs = w[1];
}
