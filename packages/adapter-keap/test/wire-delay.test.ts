import { describe, expect, it } from "vitest";
import { WireDelay } from "../src/wire-delay.js";
import { unmarked } from "../src/wire-times.js";

/** A request sent at 0 whose headers went out `clientMs` later and whose answer came `netMs` after that. */
const marked = (clientMs: number, netMs: number) => ({
  headersSentMs: clientMs,
  answeredMs: clientMs + netMs,
});

describe("WireDelay", () => {
  it("without undici's marks, takes a round trip beyond the shortest as delay on the way out", () => {
    const d = new WireDelay();
    expect(d.delayMs(unmarked(), 0, 2, 0)).toBeUndefined();
    expect(d.delayMs(unmarked(), 0, 2.5, 1)).toBe(0.5);
    expect(d.delayMs(unmarked(), 0, 9, 2)).toBe(7);
  });

  it("with them, counts this process's delay exactly and a round trip's usual noise not at all", () => {
    const d = new WireDelay();
    expect(d.delayMs(marked(0.6, 1), 0, 2, 0)).toBeUndefined();
    // The network share varies by up to 1.5 ms: ordinary, whichever way it was spent.
    for (let i = 0; i < 40; i++) {
      const delayMs = d.delayMs(marked(0.6, 1 + (i % 4) * 0.5), 0, 3, i);
      // Once a few round trips show what is usual.
      if (i >= 8) expect(delayMs).toBeCloseTo(0);
    }
    // 3 ms more inside the process before the request went out.
    expect(d.delayMs(marked(3.6, 1), 0, 5, 50)).toBeCloseTo(3);
    // A network or gateway stall of 10 ms: beyond the usual 1.5 ms, 8.5 ms count.
    expect(d.delayMs(marked(0.6, 11), 0, 12, 51)).toBeCloseTo(8.5);
  });
});
