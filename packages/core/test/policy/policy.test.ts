import { ConfigError } from "@sluice/core";
import { compilePolicies } from "@sluice/core/store";
import { describe, expect, it } from "vitest";

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    compilePolicies(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe("CONFIG_INVALID");
    return [...(e as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}

describe("policy validation", () => {
  it("compiles durations to milliseconds and defaults the sliding precision to window/60", () => {
    const [bucket, window, sliding] = compilePolicies([
      { kind: "tokenBucket", name: "b", capacity: 10, refill: { tokens: 2, every: "1s" } },
      { kind: "fixedWindow", name: "w", limit: 5, window: "1d", timeZone: "America/New_York" },
      { kind: "slidingWindow", name: "s", limit: 5, window: "1m" },
    ]);
    expect(bucket).toMatchObject({ refillTokens: 2, refillEveryMs: 1000 });
    expect(window).toMatchObject({ windowMs: 86_400_000, align: "calendar" });
    expect(sliding).toMatchObject({ windowMs: 60_000, precisionMs: 1000 });
  });

  it("refuses a bucket or a pool beyond what every store computes exactly (2^52)", () => {
    const year = 365 * 86_400_000;
    // 2^52 token-milliseconds, or 2^52 ms to refill from empty, are the most.
    const atMost = Math.floor(2 ** 52 / year);
    expect(() =>
      compilePolicies([
        { kind: "tokenBucket", name: "b", capacity: atMost, refill: { tokens: 1, every: year } },
        { kind: "pool", name: "p", capacity: atMost * 3, refill: { tokens: 3, every: year } },
      ]),
    ).not.toThrow();
    expect(
      issuesOf([
        { kind: "tokenBucket", name: "b", capacity: 2 ** 52, refill: { tokens: 1, every: 2 } },
        { kind: "pool", name: "p", capacity: 2 ** 52, refill: { tokens: 1, every: 1_000 } },
        { kind: "pool", name: "q", capacity: atMost * 3 + 1, refill: { tokens: 3, every: year } },
      ]).map((i) => i.path),
    ).toEqual(["policies[0].capacity", "policies[1].capacity", "policies[2].capacity"]);
    expect(
      issuesOf([{ kind: "pool", name: "p", capacity: 2 ** 52, refill: { tokens: 1, every: 2 } }]),
    ).toEqual([
      {
        path: "policies[0].capacity",
        message:
          "a refill from empty (capacity / refill.tokens steps of refill.every) must take at most 2^52 ms; use fewer steps or a shorter refill period",
      },
    ]);
  });

  it("refuses an empty policy list", () => {
    expect(issuesOf([])).toEqual([
      { path: "policies", message: "policies must name at least one policy" },
    ]);
  });

  it("says a field of the wrong type is wrong, and a missing one is required", () => {
    const issues = issuesOf([
      { kind: "tokenBucket", name: "b", capacity: "10", refill: { tokens: 1 } },
    ]);
    expect(issues).toContainEqual({
      path: "policies[0].capacity",
      message: "capacity must be a number",
    });
    expect(issues).toContainEqual({
      path: "policies[0].refill.every",
      message:
        'refill.every must be a duration from 1 ms to 100 years: whole milliseconds or a string like "500ms", "30s", "1m", "1h", "1d" (got undefined)',
    });
    const missing = issuesOf([{ kind: "pool", name: "p", refill: { tokens: 1, every: 1 } }]);
    expect(missing).toContainEqual({
      path: "policies[0].capacity",
      message: "capacity is required",
    });
  });

  it("names the field path of a bad value", () => {
    const issues = issuesOf([
      { kind: "pool", name: "p", capacity: 0, refill: { tokens: 1, every: "1s" } },
      { kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: "soon" } },
    ]);
    const paths = issues.map((i) => i.path);
    expect(paths).toContain("policies[0].capacity");
    expect(paths).toContain("policies[1].refill.every");
  });

  it("suggests the intended name of an unknown field", () => {
    const issues = issuesOf([{ kind: "fixedWindow", name: "w", limt: 5, window: "1m" }]);
    const typo = issues.find((i) => i.path === "policies[0].limt");
    expect(typo?.message).toContain('did you mean "limit"');
  });

  it("refuses an unknown time zone", () => {
    const issues = issuesOf([
      { kind: "fixedWindow", name: "w", limit: 5, window: "1d", timeZone: "Mars/Olympus" },
    ]);
    expect(issues.map((i) => i.path)).toContain("policies[0].timeZone");
  });

  it("refuses a time zone on a window that is not whole days or aligned to first use", () => {
    const hours = issuesOf([
      { kind: "fixedWindow", name: "w", limit: 5, window: "5h", timeZone: "Europe/London" },
    ]);
    expect(hours.map((i) => i.path).join(" ")).toMatch(/policies\[0\]\.(window|timeZone)/);
    const firstUse = issuesOf([
      {
        kind: "fixedWindow",
        name: "w",
        limit: 5,
        window: "1d",
        timeZone: "Europe/London",
        align: "firstUse",
      },
    ]);
    expect(firstUse.some((i) => i.path.startsWith("policies[0]"))).toBe(true);
  });

  it("refuses duplicate names and unknown kinds, listing every problem at once", () => {
    const issues = issuesOf([
      { kind: "concurrency", name: "c", limit: 1, leaseTtl: "1s" },
      { kind: "concurrency", name: "c", limit: 1, leaseTtl: "1s" },
      { kind: "leakyBucket", name: "x" },
    ]);
    const paths = issues.map((i) => i.path);
    expect(paths).toContain("policies[1].name");
    expect(paths.some((p) => p.startsWith("policies[2]"))).toBe(true);
  });
});
