import { localDay, localMidnight } from "../time-zone.js";

const DAY_MS = 86_400_000;
/** Shorter than the shortest stretch between two UTC-offset changes in the zones the suite uses. */
const STRETCH_DAYS = 120;

/** UTC offset of a zone at the start of local day `day` (ms). */
const offsetAt = (zone: string, day: number) => localMidnight(zone, day) - day * DAY_MS;

/**
 * The end of the next local day after `fromMs` in which the UTC offset changes (a DST day of 23
 * or 25 hours), or undefined when none comes within about a year. The suite jumps its fake clock
 * to hours before it, so such days are exercised on every run with a zoned policy, not only in
 * the first weeks after the suite's epoch.
 */
export function nextOffsetChange(zone: string, fromMs: number): number | undefined {
  let lo = localDay(zone, fromMs);
  for (let stretch = 0; stretch < 4; stretch++) {
    let hi = lo + STRETCH_DAYS;
    const start = offsetAt(zone, lo);
    if (offsetAt(zone, hi) === start) {
      lo = hi;
      continue;
    }
    // At most one change within a stretch: binary search for the first day past it.
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (offsetAt(zone, mid) === start) lo = mid;
      else hi = mid;
    }
    return localMidnight(zone, hi);
  }
  return undefined;
}
