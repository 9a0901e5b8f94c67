// Calendar windows in an IANA time zone. Stores have no time-zone database (Redis Lua has none),
// so the engine hands them the window boundaries around the present as plain epoch ms.

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Whether the runtime knows `timeZone` as an IANA time zone (`"Europe/London"`), as a
 * `fixedWindow` policy's `timeZone` requires.
 *
 * @param timeZone - the name to check.
 * @returns true when `Intl` can format dates in it.
 */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== "string" || timeZone === "") return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Local wall-clock time at `ms`, expressed as if it were UTC (epoch ms). */
function wallClock(timeZone: string, ms: number): number {
  const parts = formatter(timeZone).formatToParts(ms);
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  for (const p of parts) {
    if (p.type === "year") y = Number(p.value);
    else if (p.type === "month") mo = Number(p.value);
    else if (p.type === "day") d = Number(p.value);
    else if (p.type === "hour") h = Number(p.value);
    else if (p.type === "minute") mi = Number(p.value);
    else if (p.type === "second") s = Number(p.value);
  }
  return Date.UTC(y, mo - 1, d, h, mi, s) + (((ms % 1000) + 1000) % 1000);
}

/** Local civil day number (days since 1970-01-01 in that zone) at instant `ms`. */
export function localDay(timeZone: string, ms: number): number {
  return Math.floor(wallClock(timeZone, ms) / DAY_MS);
}

/** First instant (epoch ms) whose local date is civil day `day` in `timeZone`. */
export function localMidnight(timeZone: string, day: number): number {
  const wall = day * DAY_MS;
  // Two rounds of offset correction land on local midnight unless a DST gap swallows it.
  let t = wall - (wallClock(timeZone, wall) - wall);
  t = wall - (wallClock(timeZone, t) - t);
  if (localDay(timeZone, t) === day && wallClock(timeZone, t) === wall) return t;
  // Midnight does not exist that day (a DST jump at 00:00): the day starts at the first
  // instant whose local date is `day`. Binary search on whole milliseconds.
  let lo = t - 6 * 3_600_000;
  let hi = t + 6 * 3_600_000;
  while (localDay(timeZone, lo) >= day) lo -= 3_600_000;
  while (localDay(timeZone, hi) < day) hi += 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDay(timeZone, mid) >= day) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Starts of consecutive windows of `windowDays` local days, covering `aroundMs` minus `before`
 * windows to plus `after` windows. Window k spans local days [k*windowDays, (k+1)*windowDays).
 */
export function zoneWindowBounds(
  timeZone: string,
  windowDays: number,
  aroundMs: number,
  before = 3,
  after = 3,
): number[] {
  const k = Math.floor(localDay(timeZone, aroundMs) / windowDays);
  const out: number[] = [];
  for (let i = k - before; i <= k + after + 1; i++)
    out.push(localMidnight(timeZone, i * windowDays));
  return out;
}

/**
 * Whether the store's clock `nowMs` lies within every list of window bounds of a request (a list
 * of fewer than two starts covers nothing and asks nothing: epoch-aligned windows). A store
 * answers BOUNDS_NEEDED, applying nothing, when it does not: a window taken from bounds around
 * some other present would be the wrong one, and it is stored with the key.
 */
export function boundsCover(
  windowBounds: readonly (readonly number[] | undefined)[],
  nowMs: number,
): boolean {
  for (let i = 0; i < windowBounds.length; i++) {
    const b = windowBounds[i];
    if (b !== undefined && b.length >= 2 && (nowMs < b[0]! || nowMs >= b[b.length - 1]!)) {
      return false;
    }
  }
  return true;
}

/**
 * The window [start, end) containing `nowMs`, given sorted boundaries. Outside them (fewer than
 * two; a store asks for new bounds whenever its clock is outside a longer list) epoch-aligned
 * windows of `windowMs`.
 */
export function windowFromBounds(
  bounds: readonly number[],
  windowMs: number,
  nowMs: number,
): [number, number] {
  const n = bounds.length;
  if (n < 2 || nowMs < bounds[0]! || nowMs >= bounds[n - 1]!) {
    const start = Math.floor(nowMs / windowMs) * windowMs;
    return [start, start + windowMs];
  }
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid]! <= nowMs) lo = mid;
    else hi = mid;
  }
  return [bounds[lo]!, bounds[lo + 1]!];
}
