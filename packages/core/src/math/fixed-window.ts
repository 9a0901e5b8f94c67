import type { CompiledFixedWindow } from "../policy/compile.js";
import { windowFromBounds } from "../time-zone.js";
import type { KindMath, StateBase } from "./types.js";

/** Fixed window: `count` admitted in the window that ends at `endMs`. */
export interface FixedWindowState extends StateBase {
  count: number;
  endMs: number;
}

export const fixedWindow: KindMath<CompiledFixedWindow, FixedWindowState> = {
  load(stored, p, _limit, now, bounds, reuse) {
    if (stored !== undefined && stored.count > 0 && now < stored.endMs) {
      return reuse ? stored : { ...stored };
    }
    const s: FixedWindowState =
      stored !== undefined && reuse
        ? stored
        : {
            count: 0,
            endMs: 0,
            ll: stored?.ll ?? 0,
            lu: stored?.lu ?? 0,
            dueMs: stored?.dueMs ?? 0,
          };
    // dueMs stays: it still covers a learned limit kept on this state.
    s.count = 0;
    if (p.align === "firstUse") s.endMs = now + p.windowMs;
    else if (bounds !== undefined) s.endMs = windowFromBounds(bounds, p.windowMs, now)[1];
    else s.endMs = (Math.floor(now / p.windowMs) + 1) * p.windowMs;
    return s;
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
