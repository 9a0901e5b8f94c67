import { describe, expect, it } from "vitest";
import { isDisguisedThrottle } from "../src/causes.js";
import { classify429, parseMessageRate } from "../src/index.js";
import { perSecond } from "../src/pacing.js";
import { BARE, SPIKE_FAULT } from "./helpers.js";

describe("classify429", () => {
  it("reads a body behind a byte-order mark", () => {
    expect(classify429(`\uFEFF${BARE}`, [])).toEqual({ cause: "spike" });
    expect(classify429(`\uFEFF\n${SPIKE_FAULT}`, [])).toMatchObject({
      cause: "spike",
      messageRate: { messagesPerPeriod: 2, periodMs: 5_000 },
    });
  });

  it("tells the bare body apart by the window its headers report empty", () => {
    expect(classify429(BARE, [{ policy: "throttle", remaining: 0 }])).toEqual({
      cause: "throttle",
    });
    expect(classify429(BARE, [{ policy: "throttle", remaining: 3 }])).toEqual({ cause: "spike" });
  });

  it("reads XML-RPC's 'Maximum number of threads throttled' fault as a throttle", () => {
    const fault =
      "<?xml version='1.0'?><methodResponse><fault><value><string>Maximum number of threads throttled</string></value></fault></methodResponse>";
    expect(classify429(fault, [])).toEqual({ cause: "throttle" });
    expect(isDisguisedThrottle(200, fault)).toBe(true);
    expect(isDisguisedThrottle(200, "<methodResponse><params/></methodResponse>")).toBe(false);
  });

  it("knows a 5xx carrying an Apigee rate fault from any other 5xx", () => {
    expect(isDisguisedThrottle(500, SPIKE_FAULT)).toBe(true);
    expect(
      isDisguisedThrottle(
        500,
        '{"fault":{"faultstring":"Rate limit quota violation","detail":{"errorcode":"policies.ratelimit.QuotaViolation"}}}',
      ),
    ).toBe(true);
    expect(isDisguisedThrottle(500, '{"fault":{"faultstring":"Internal error"}}')).toBe(false);
    expect(isDisguisedThrottle(404, SPIKE_FAULT)).toBe(false);
  });
});

describe("MessageRate", () => {
  const rate = (fields: string) => parseMessageRate(`MessageRate{${fields}}`);

  it("reads a period of any length as the base second times the processors", () => {
    const r = rate("messagesPerPeriod=25, periodInMicroseconds=6500000, maxBurstMessageCount=1.0");
    expect(r).toEqual({ messagesPerPeriod: 25, periodMs: 6_500 });
    expect(perSecond(r!)).toBe(25);
    expect(perSecond(rate("messagesPerPeriod=5, periodInMicroseconds=5000000")!)).toBe(5);
  });

  it("reads per-minute rates, split counts and smoothed intervals", () => {
    // 300 per minute, over one or six processors: 5 per second.
    expect(perSecond(rate("messagesPerPeriod=300, periodInMicroseconds=60000000")!)).toBe(5);
    expect(perSecond(rate("messagesPerPeriod=300, periodInMicroseconds=360000000")!)).toBe(5);
    // The count split into intervals: one per 40 ms is 25 per second.
    expect(perSecond(rate("messagesPerPeriod=1, periodInMicroseconds=40000")!)).toBe(25);
    // A count split over processors may be a decimal.
    expect(rate("messagesPerPeriod=4.1666, periodInMicroseconds=1000000")).toEqual({
      messagesPerPeriod: 4.1666,
      periodMs: 1_000,
    });
  });

  it("ignores absent and implausible rates", () => {
    expect(parseMessageRate("Spike arrest violation")).toBeUndefined();
    expect(rate("messagesPerPeriod=0, periodInMicroseconds=1000000")).toBeUndefined();
    expect(rate("messagesPerPeriod=5, periodInMicroseconds=10")).toBeUndefined();
    expect(rate("messagesPerPeriod=-5, periodInMicroseconds=1000000")).toBeUndefined();
  });
});
