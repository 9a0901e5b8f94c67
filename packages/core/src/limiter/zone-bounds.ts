import type { CompiledPolicy } from "../policy/compile.js";
import { zoneWindowBounds } from "../time-zone.js";

const DAY_MS = 86_400_000;

/**
 * Window starts of the calendar fixed windows in a time zone, around the store's present, by
 * policy index (stores carry no time-zone database). Computing them costs `Intl` calls, so one
 * list serves until the present leaves its middle.
 */
export class ZoneBounds {
  private bounds: (readonly number[] | undefined)[] = [];
  private validFromMs = 0;
  private validToMs = -1;

  private constructor(
    private readonly policies: readonly CompiledPolicy[],
    /** Indexes of calendar fixed windows in a time zone. */
    private readonly zoned: readonly number[],
  ) {}

  /** The cache for these policies, or undefined when none is a calendar window in a time zone. */
  static of(policies: readonly CompiledPolicy[]): ZoneBounds | undefined {
    const zoned: number[] = [];
    policies.forEach((p, i) => {
      if (p.kind === "fixedWindow" && p.timeZone !== undefined && p.align === "calendar")
        zoned.push(i);
    });
    return zoned.length === 0 ? undefined : new ZoneBounds(policies, zoned);
  }

  /** Bounds by policy index (undefined for the others) around `storeNowMs`. */
  at(storeNowMs: number): readonly (readonly number[] | undefined)[] {
    if (storeNowMs < this.validFromMs || storeNowMs > this.validToMs) {
      const bounds = new Array<readonly number[] | undefined>(this.policies.length).fill(undefined);
      let from = Number.NEGATIVE_INFINITY;
      let to = Number.POSITIVE_INFINITY;
      for (const i of this.zoned) {
        const p = this.policies[i]!;
        if (p.kind !== "fixedWindow" || p.timeZone === undefined) continue;
        const b = zoneWindowBounds(p.timeZone, p.windowMs / DAY_MS, storeNowMs);
        bounds[i] = b;
        // Recompute once the present leaves the middle of the list.
        from = Math.max(from, b[2]!);
        to = Math.min(to, b[b.length - 3]!);
      }
      this.bounds = bounds;
      this.validFromMs = from;
      this.validToMs = to;
    }
    return this.bounds;
  }
}

/**
 * Bounds by policy index around `storeNowMs`, computed afresh: for a store that answered
 * BOUNDS_NEEDED (its clock outside the bounds sent), which is asked again at once.
 */
export function windowBoundsAround(
  policies: readonly CompiledPolicy[],
  storeNowMs: number,
): readonly (readonly number[] | undefined)[] | undefined {
  return ZoneBounds.of(policies)?.at(storeNowMs);
}
