import { createLimiter, type Limiter } from "@sluice/core";
import type { SharedLimiterOptions } from "./spike-slots.js";

/** The policy whose learned limit carries the spacing (never charged, only reconciled and read). */
export const SHARED_PACING_POLICY = "spikePacing";
/** Read the shared spacing at most this often (one store call, off the request's path). */
const READ_EVERY_MS = 100;
/** A slow-down is forgotten by the store after this long (pacing has recovered from it by then). */
const SHARED_TTL_MS = 10 * 60_000;

/**
 * Spike pacing shared by every process on the store: the spacing a spike 429 slowed pacing to
 * (in microseconds) is kept as the learned limit of a policy of its own, so that one process's
 * spike 429 slows them all, and from the same moment they recover together. Without it each
 * process slows only on its own 429s, while the spike bucket they share admits at the pace of the
 * fastest.
 */
export class SharedPacing {
  private readonly limiter: Limiter;
  /** The last value published or read (µs): a new one is another process's slow-down. */
  private lastSeen: number | undefined;
  private reading = false;
  private nextReadAtMs = 0;
  /** Bumped by each publish: a read that began before it may return the value it replaced. */
  private generation = 0;

  constructor(
    shared: SharedLimiterOptions,
    scope: readonly string[] | undefined,
    private readonly key: Readonly<Record<string, string>>,
  ) {
    this.limiter = createLimiter({
      ...shared,
      learnedLimitTtlMs: SHARED_TTL_MS,
      policies: [
        {
          kind: "fixedWindow",
          name: SHARED_PACING_POLICY,
          ...(scope === undefined ? {} : { scope: [...scope] }),
          // 1 means "nothing shared": no spacing is 1 µs.
          limit: 1,
          window: "1h",
        },
      ],
    });
  }

  /** This process slowed down: tell the others. A failure only keeps them at their own pace. */
  publish(spacingMs: number): void {
    const us = Math.max(2, Math.round(spacingMs * 1000));
    this.lastSeen = us;
    this.generation++;
    void this.limiter
      .reconcile(this.key, { policy: SHARED_PACING_POLICY, limit: us })
      .catch(() => {});
  }

  /**
   * Reads the shared spacing (at most every READ_EVERY_MS, one read at a time) and hands a value
   * another process published since the last read to `onNew` (ms): a spike 429 somewhere.
   */
  poll(nowMs: number, onNew: (spacingMs: number) => void): void {
    if (this.reading || nowMs < this.nextReadAtMs) return;
    this.reading = true;
    this.nextReadAtMs = nowMs + READ_EVERY_MS;
    const generation = this.generation;
    this.limiter
      .peek(this.key)
      .then((d) => {
        if (generation !== this.generation) return;
        const us = d.degraded ? undefined : d.policies[0]?.limit;
        if (us === undefined || us < 2 || us === this.lastSeen) return;
        this.lastSeen = us;
        onNew(us / 1000);
      })
      .catch(() => {})
      .finally(() => {
        this.reading = false;
      });
  }

  close(reason: string): void {
    this.limiter.close(reason);
  }
}
