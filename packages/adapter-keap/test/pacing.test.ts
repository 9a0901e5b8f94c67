import { describe, expect, it } from "vitest";
import { SpikePacing } from "../src/pacing.js";

const round = (ms: number) => Math.round(ms * 1000) / 1000;

describe("adaptive spike pacing (AIMD)", () => {
  it("starts 10% below the nominal rate and shortens 0.5% per 2 s, down to 2% below it", () => {
    const p = new SpikePacing(25, 0.1, false, 0);
    expect(round(p.spacingMs)).toBe(44);
    expect(p.tick(1_999)).toBe(false);
    expect(p.tick(2_000)).toBe(true);
    expect(round(p.spacingMs)).toBe(43.78);
    p.tick(6_000); // two more steps at once
    expect(round(p.spacingMs)).toBe(round(44 * 0.995 ** 3));
    p.tick(600_000);
    expect(round(p.spacingMs)).toBe(round(1000 / (25 * 0.98))); // 40.816 ms
  });

  it("never paces the spike faster than the per-minute throttle lets requests through", () => {
    // PAT: 5 per second, but 240 per minute is one per 250 ms: pacing stays at its 220 ms start.
    const pat = new SpikePacing(5, 0.1, false, 0, 250);
    pat.tick(600_000);
    expect(round(pat.spacingMs)).toBe(220);
    expect(pat.adapts).toBe(false); // so it never catches up on late admissions either
    // OAuth: 1,500 per minute is one per 40 ms, under the 2% floor of 40.816 ms.
    const oauth = new SpikePacing(25, 0.1, false, 0, 40);
    oauth.tick(600_000);
    expect(round(oauth.spacingMs)).toBe(40.816);
    expect(oauth.adapts).toBe(true);
    expect(new SpikePacing(25, 0.1, true, 0, 40).adapts).toBe(false); // strict
  });

  it("lengthens by 10% on a spike 429, at most 8 times the start", () => {
    const p = new SpikePacing(25, 0.1, false, 0);
    p.onSpike(undefined, 100);
    expect(round(p.spacingMs)).toBe(48.4);
    expect(p.tick(2_099)).toBe(false); // the 2 s count from the 429
    for (let i = 0; i < 40; i++) p.onSpike(undefined, 200);
    expect(round(p.spacingMs)).toBe(352);
    expect(p.atSlowest).toBe(true);
  });

  it("moves to the fault's rate when it is below the nominal one", () => {
    const p = new SpikePacing(25, 0.1, false, 0);
    p.onSpike({ messagesPerPeriod: 10, periodMs: 6_000 }, 0);
    expect(round(p.spacingMs)).toBe(110); // 10 per second, 10% below
    p.tick(600_000);
    expect(round(p.spacingMs)).toBe(round(1000 / 9.8));
  });

  it("strict keeps the start margin: it recovers to it, never below", () => {
    const p = new SpikePacing(5, 0.1, true, 0);
    p.tick(60_000);
    expect(round(p.spacingMs)).toBe(220);
    p.onSpike(undefined, 60_000);
    expect(round(p.spacingMs)).toBe(242);
    p.tick(600_000);
    expect(round(p.spacingMs)).toBe(220);
  });

  it("leaves other senders of the same app or tenant their share", () => {
    const p = new SpikePacing(25, 0.1, true, 0, 0, 60_000);
    // The server's minute holds 600 requests more than the store's: 10 per second from others.
    p.observeForeign(602); // a request in flight makes one answer run ahead
    p.observeForeign(600);
    p.tick(4_000);
    // Smoothed: half of the 10 per second seen, so 20 of the 25 per second are left.
    expect(round(p.others)).toBe(5);
    expect(round(p.spacingMs)).toBe(55);
    p.tick(8_000); // nothing foreign since
    expect(round(p.others)).toBe(2.5);
    p.observeForeign(60_000);
    p.tick(10_000);
    expect(round(p.spacingMs)).toBe(440); // never below a tenth of the rate
  });
  it("takes a steady difference between the server's count and the store's for no one", () => {
    // Every answer shows the server's minute 2 ahead of the store's (its count is exact, the
    // store's sliding window an estimate): 2 requests in a minute, not 2 per answer.
    const p = new SpikePacing(25, 0.1, false, 0, 0, 60_000);
    for (let i = 0; i < 50; i++) p.observeForeign(2);
    p.tick(2_000);
    expect(p.others).toBe(0);
    expect(round(p.spacingMs)).toBe(43.78);
  });
});
