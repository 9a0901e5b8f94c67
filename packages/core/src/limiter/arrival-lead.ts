/**
 * How many whole ms before the time the store named a waiter's next try should leave, learned
 * from where its tries land on the store's clock.
 *
 * A waiter told "retry in 40 ms" that sleeps exactly 40 ms reaches the store late: the answer's
 * trip back, a timer that fires up to a ms after its whole-ms due time, the trip out. Behind a
 * bucket that admits one at a time, that lateness adds to every gap between admissions and is
 * lost for good. Leaving a ms or two early wins it back; a try that lands before the time is
 * refused and tries again, costing a store call. So the lead grows while most tries land late
 * and shrinks once early ones are common.
 */
export class ArrivalLead {
  private lead = 0;
  /** Smoothed shares of tries that landed a ms or more late, and before the named time. */
  private late = 0;
  private early = 0;

  /** The lead in whole ms (0 until tries are seen landing late). */
  get ms(): number {
    return this.lead;
  }

  /**
   * A try aimed at `aimedMs` on the store's clock (the named time, before the lead) landed at
   * `landedMs` on the same clock.
   */
  observe(aimedMs: number, landedMs: number): void {
    const offMs = landedMs - aimedMs;
    this.late += ((offMs >= 1 ? 1 : 0) - this.late) * SMOOTHING;
    this.early += ((offMs < 0 ? 1 : 0) - this.early) * SMOOTHING;
    if (this.early > EARLY_SHARE) {
      if (this.lead > 0) this.lead--;
      this.late = this.early = 0;
    } else if (this.late > LATE_SHARE) {
      if (this.lead < MAX_LEAD_MS) this.lead++;
      this.late = this.early = 0;
    }
  }
}

/** Weight of each try in the smoothed shares: a change needs a few tries in a row to show. */
const SMOOTHING = 1 / 8;
/** Above this share of late tries, leave a ms earlier. */
const LATE_SHARE = 1 / 2;
/** Above this share of early tries (each costs a store call), leave a ms later. */
const EARLY_SHARE = 1 / 4;
/** The most a try leaves early: a store further away than this is far for a limiter. */
const MAX_LEAD_MS = 4;
