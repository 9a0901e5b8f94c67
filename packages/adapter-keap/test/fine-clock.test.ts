import { afterEach, describe, expect, it, vi } from "vitest";
import { FineClock } from "../src/fine-clock.js";
import { ok, patClient, scripted } from "./helpers.js";

/** A wall clock of whole ms over a monotonic clock that `advance` moves (ms, fractional). */
function clocks(wallStartMs: number) {
  let mono = 500;
  let wallOffset = wallStartMs - mono;
  vi.spyOn(performance, "now").mockImplementation(() => mono);
  vi.spyOn(Date, "now").mockImplementation(() => Math.floor(mono + wallOffset));
  return {
    advance: (ms: number) => {
      mono += ms;
    },
    stepWall: (ms: number) => {
      wallOffset += ms;
    },
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("FineClock", () => {
  it("reads the wall clock to a fraction of a ms, within the ms Date.now() shows", () => {
    const t = clocks(1_000_000.25);
    const clock = new FineClock();
    // The first reading only knows the whole ms.
    expect(clock.now()).toBe(1_000_000);
    t.advance(0.4);
    expect(clock.now()).toBeCloseTo(1_000_000.4, 9);
    t.advance(0.5);
    // The wall clock turned to ...001 while the estimate shows ...000.9: moved to the new ms.
    expect(clock.now()).toBe(1_000_001);
    t.advance(0.3);
    expect(clock.now()).toBeCloseTo(1_000_001.3, 9);
    for (let i = 0; i < 50; i++) {
      t.advance(0.37);
      const now = clock.now();
      expect(Math.floor(now)).toBe(Date.now());
    }
  });

  it("follows a step of the wall clock at the next reading", () => {
    const t = clocks(2_000_000);
    const clock = new FineClock();
    clock.now();
    t.stepWall(-30);
    t.advance(0.2);
    expect(Math.floor(clock.now())).toBe(Date.now());
    t.stepWall(45);
    expect(Math.floor(clock.now())).toBe(Date.now());
  });
});

describe("keap.fetch's sends", () => {
  it("wait out the fraction of a ms that a timer cannot", async () => {
    // Each reading of the monotonic clock finds it 0.05 ms later: time passes as the loop turns.
    let mono = 100;
    vi.spyOn(performance, "now").mockImplementation(() => {
      mono += 0.05;
      return mono;
    });
    vi.spyOn(Date, "now").mockImplementation(() => Math.floor(1_000_000 + mono));
    const keap = patClient(scripted([ok()]).fetch);
    const until = (keap as unknown as { until(at: number, s?: AbortSignal): Promise<void> }).until;
    const clock = (keap as unknown as { clock: FineClock }).clock;
    const target = clock.now() + 0.7;
    await until.call(keap, target, undefined);
    // A timer of whole ms would not have waited at all (0.7 ms rounds down to 0).
    expect(clock.now()).toBeGreaterThanOrEqual(target);
    keap.close();
  });
});
