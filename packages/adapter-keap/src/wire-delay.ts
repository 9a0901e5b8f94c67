import { MinRtt } from "./min-rtt.js";
import { RecentQuantile } from "./recent-quantile.js";
import type { WireMark } from "./wire-times.js";

/**
 * How much later than usual a request reached Keap, judged once its answer is in (ms, at least 0;
 * undefined until there is something to compare with).
 *
 * - With undici's marks (Node's `fetch`): the time from calling `fetch` to writing the request is
 *   this process's share, measured exactly; beyond its shortest recent value it is delay. The
 *   rest of the round trip (network, gateway, reading the answer) varies as much on the way back
 *   as on the way out, so only what exceeds its usual excess (the 90th percentile of recent ones)
 *   counts: a stalled network or gateway, not a round trip's ordinary noise. What follows the
 *   answer's arrival (a busy event loop reading it) does not count at all.
 * - Otherwise (a fetch that is not undici): the round trip beyond the shortest recent one, all of
 *   it taken as delay on the way out.
 */
export class WireDelay {
  private readonly minRtt = new MinRtt();
  private readonly minClient = new MinRtt();
  private readonly minNet = new MinRtt();
  private readonly netExcess = new RecentQuantile(32, 0.9);

  /**
   * A request sent at `sentMs` (monotonic clock, as the marks) whose answer resolved `rttMs`
   * later; `nowMs` (any clock) ages the minimums.
   */
  delayMs(mark: WireMark, sentMs: number, rttMs: number, nowMs: number): number | undefined {
    const minRtt = this.minRtt.ms;
    this.minRtt.add(rttMs, nowMs);
    if (mark.headersSentMs === undefined || mark.answeredMs === undefined) {
      return minRtt === undefined ? undefined : Math.max(0, rttMs - minRtt);
    }
    const clientMs = mark.headersSentMs - sentMs;
    const netMs = mark.answeredMs - mark.headersSentMs;
    const minClient = this.minClient.ms;
    const minNet = this.minNet.ms;
    this.minClient.add(clientMs, nowMs);
    this.minNet.add(netMs, nowMs);
    if (minClient === undefined || minNet === undefined) return undefined;
    const excess = netMs - minNet;
    const usual = this.netExcess.ms();
    this.netExcess.add(excess);
    return Math.max(0, clientMs - minClient) + Math.max(0, excess - usual);
  }
}
