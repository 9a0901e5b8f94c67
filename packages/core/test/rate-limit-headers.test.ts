import {
  ConfigError,
  createLimiter,
  type Decision,
  parseRateLimitHeaders,
  parseRateLimitHeadersDetailed,
  rateLimitHeaders,
  SluiceError,
} from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const NOW = 1_800_000_000_000;

/** A limiter on a memory store whose clock stands still at NOW. */
function limiterAt(policies: Parameters<typeof createLimiter>[0]["policies"]) {
  return createLimiter({ store: memoryStore({ clock: () => NOW }), policies });
}

const burstAndDaily = [
  { kind: "tokenBucket", name: "burst", capacity: 10, refill: { tokens: 10, every: "1s" } },
  { kind: "fixedWindow", name: "daily", limit: 1000, window: "1d" },
] as const;

describe("PolicyState.windowMs", () => {
  it("is the window of a window, the time to refill from empty for a bucket or pool, absent for slots", async () => {
    const limiter = limiterAt([
      { kind: "tokenBucket", name: "tb", capacity: 10, refill: { tokens: 3, every: "1s" } },
      { kind: "pool", name: "pool", capacity: 10, refill: { tokens: 3, every: "1m" } },
      { kind: "fixedWindow", name: "fw", limit: 5, window: "1h" },
      { kind: "slidingWindow", name: "sw", limit: 5, window: "10s" },
      { kind: "concurrency", name: "slots", limit: 2, leaseTtl: "30s" },
    ]);
    const d = await limiter.take("k");
    expect(d.policies.map((p) => p.windowMs)).toEqual([
      3334, // 10 tokens at 3 per second: 3.33 s, rounded up to the ms
      240_000, // 4 whole steps of a minute
      3_600_000,
      10_000,
      undefined,
    ]);
    expect("windowMs" in d.policies[4]!).toBe(false);
  });
});

describe("rateLimitHeaders", () => {
  it("writes draft-8 with one policy item per rate policy and the binding policy's state", async () => {
    const limiter = limiterAt([...burstAndDaily]);
    await limiter.take("k", { cost: 7 });
    const d = await limiter.take("k");
    expect(rateLimitHeaders(d, { nowMs: NOW })).toEqual({
      "RateLimit-Policy": '"burst";q=10;w=1, "daily";q=1000;w=86400',
      RateLimit: '"burst";r=2;t=1',
    });
  });

  it("names the blocking policy with the latest reset when refused, and adds Retry-After", async () => {
    const limiter = limiterAt([
      { kind: "tokenBucket", name: "burst", capacity: 10, refill: { tokens: 1, every: "1s" } },
      { kind: "fixedWindow", name: "hourly", limit: 10, window: "1h" },
    ]);
    await limiter.take("k", { cost: 10 });
    const d = await limiter.take("k");
    expect(d.allowed).toBe(false);
    expect(d.blockedBy).toEqual(["burst", "hourly"]);
    const hourEnd = Math.ceil((Math.floor(NOW / 3_600_000) * 3_600_000 + 3_600_000 - NOW) / 1000);
    expect(rateLimitHeaders(d, { nowMs: NOW })).toEqual({
      "RateLimit-Policy": '"burst";q=10;w=10, "hourly";q=10;w=3600',
      RateLimit: `"hourly";r=0;t=${hourEnd}`,
      "Retry-After": String(hourEnd),
    });
  });

  it("writes draft-7, draft-6 and legacy headers for the binding policy", async () => {
    const limiter = limiterAt([...burstAndDaily]);
    await limiter.take("k", { cost: 3 });
    const d = await limiter.take("k");
    expect(rateLimitHeaders(d, { standard: "draft-7", nowMs: NOW })).toEqual({
      "RateLimit-Policy": "10;w=1, 1000;w=86400",
      RateLimit: "limit=10, remaining=6, reset=1",
    });
    expect(rateLimitHeaders(d, { standard: "draft-6", nowMs: NOW })).toEqual({
      "RateLimit-Limit": "10",
      "RateLimit-Remaining": "6",
      "RateLimit-Reset": "1",
    });
    expect(rateLimitHeaders(d, { standard: false, legacy: true, nowMs: NOW })).toEqual({
      "X-RateLimit-Limit": "10",
      "X-RateLimit-Remaining": "6",
      "X-RateLimit-Reset": "1",
    });
    expect(rateLimitHeaders(d, { standard: false, nowMs: NOW })).toEqual({});
  });

  it("rounds seconds up, never writes a negative one, and picks the fewest remaining by ratio", () => {
    const d: Decision = {
      allowed: true,
      remaining: 40,
      retryAfterMs: 0,
      blockedBy: [],
      policies: [
        {
          name: "a",
          kind: "fixedWindow",
          limit: 100,
          remaining: 40,
          resetAtMs: NOW - 5,
          windowMs: 1,
        },
        {
          name: "b",
          kind: "fixedWindow",
          limit: 1000,
          remaining: 999,
          resetAtMs: NOW + 1,
          windowMs: 1001,
        },
      ],
    };
    expect(rateLimitHeaders(d, { nowMs: NOW })).toEqual({
      "RateLimit-Policy": '"a";q=100;w=1, "b";q=1000;w=2',
      RateLimit: '"a";r=40;t=0',
    });
  });

  it("writes each decision's own policy list, however decisions of different policies follow each other", () => {
    // Few names, limits and windows: consecutive decisions often share some of them, never all.
    const policy = fc.record({
      name: fc.constantFrom("a", "b", "c d"),
      kind: fc.constantFrom("fixedWindow", "tokenBucket", "concurrency"),
      limit: fc.constantFrom(1, 2, 2.5),
      windowMs: fc.constantFrom(undefined, 1000, 1001, 2000),
    });
    const item = (p: { name: string; limit: number; windowMs?: number }, draft8: boolean) => {
      const w = p.windowMs === undefined ? "" : `;w=${Math.ceil(p.windowMs / 1000)}`;
      const q = Math.floor(p.limit);
      return draft8 ? `"${p.name}";q=${q}${w}` : `${q}${w}`;
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(policy, { minLength: 1, maxLength: 3 }), fc.boolean()), {
          minLength: 1,
          maxLength: 12,
        }),
        (sequence) => {
          for (const [policies, draft8] of sequence) {
            const d: Decision = {
              allowed: true,
              remaining: 1,
              retryAfterMs: 0,
              blockedBy: [],
              policies: policies.map((p) => ({
                name: p.name,
                kind: p.kind,
                limit: p.limit,
                remaining: 1,
                resetAtMs: NOW + 1000,
                ...(p.windowMs === undefined || p.kind === "concurrency"
                  ? {}
                  : { windowMs: p.windowMs }),
              })),
            };
            const rate = d.policies.filter((p) => p.kind !== "concurrency");
            const headers = rateLimitHeaders(d, {
              nowMs: NOW,
              standard: draft8 ? "draft-8" : "draft-7",
            });
            expect(headers["RateLimit-Policy"]).toBe(
              rate.length === 0 ? undefined : rate.map((p) => item(p, draft8)).join(", "),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("writes no Retry-After for a cost that can never fit, and quotes odd names reversibly", async () => {
    const limiter = limiterAt([
      { kind: "fixedWindow", name: 'quo"te\\ ünï %', limit: 5, window: "1m" },
    ]);
    const d = await limiter.take("k", { cost: 6 });
    expect(d.retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    const h = rateLimitHeaders(d, { nowMs: NOW });
    expect(h["Retry-After"]).toBeUndefined();
    expect(h["RateLimit-Policy"]).toBe('"quo\\"te\\\\ %C3%BCn%C3%AF %25";q=5;w=60');
    expect(parseRateLimitHeaders(h, { nowMs: NOW })[0]?.policy).toBe('quo"te\\ ünï %');
  });

  it("writes only configured limits for a degraded decision, with the retry hint when refused", async () => {
    let fail = true;
    const store = memoryStore({ clock: () => NOW });
    const failing = {
      ...store,
      capabilities: store.capabilities,
      execute: (req: Parameters<typeof store.execute>[0]) =>
        fail
          ? Promise.reject(Object.assign(new Error("down"), { code: "ECONNREFUSED" }))
          : store.execute(req),
    };
    const limiter = createLimiter({
      store: failing,
      policies: [...burstAndDaily],
      onStoreError: "deny",
    });
    const d = await limiter.take("k");
    expect(d.degraded).toBe(true);
    expect(rateLimitHeaders(d, { nowMs: NOW, legacy: true })).toEqual({
      "RateLimit-Policy": '"burst";q=10;w=1, "daily";q=1000;w=86400',
      "X-RateLimit-Limit": "10",
      "Retry-After": "1",
    });
    expect(rateLimitHeaders(d, { standard: "draft-7" })).toEqual({
      "RateLimit-Policy": "10;w=1, 1000;w=86400",
      "Retry-After": "1",
    });
    expect(rateLimitHeaders(d, { standard: "draft-6" })).toEqual({
      "RateLimit-Limit": "10",
      "Retry-After": "1",
    });
    fail = false;
  });

  it("leaves concurrency policies out of the rate headers", async () => {
    const limiter = limiterAt([{ kind: "concurrency", name: "slots", limit: 1, leaseTtl: "1m" }]);
    const first = await limiter.tryAcquire("k");
    const second = await limiter.tryAcquire("k");
    expect(rateLimitHeaders(first.decision)).toEqual({});
    expect(second.decision.allowed).toBe(false);
    expect(Object.keys(rateLimitHeaders(second.decision))).toEqual(
      Number.isFinite(second.decision.retryAfterMs) ? ["Retry-After"] : [],
    );
  });

  it("refuses unknown options with a hint and bad values with the field named", async () => {
    const d = await limiterAt([...burstAndDaily]).take("k");
    const issues = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).issues;
      }
      throw new Error("did not throw");
    };
    expect(issues(() => rateLimitHeaders(d, { standrd: "draft-7" } as never))).toEqual([
      { path: "standrd", message: 'unknown option (did you mean "standard"?)' },
    ]);
    expect(issues(() => rateLimitHeaders(d, { standard: "draft-9" } as never))[0]?.path).toBe(
      "standard",
    );
    expect(issues(() => rateLimitHeaders(d, { legacy: "yes" } as never))[0]?.path).toBe("legacy");
    expect(() => rateLimitHeaders(null as never)).toThrow(SluiceError);
  });
});

describe("parseRateLimitHeaders", () => {
  it("reads draft-8 back into observations for reconcile", () => {
    expect(
      parseRateLimitHeaders(
        {
          "ratelimit-policy": '"burst";q=10;w=1, "daily";q=1000;w=86400',
          ratelimit: '"burst";r=2;t=1',
        },
        { nowMs: NOW },
      ),
    ).toEqual([
      { policy: "burst", limit: 10, remaining: 2, resetAtMs: NOW + 1000 },
      { policy: "daily", limit: 1000 },
    ]);
  });

  it("reads draft-7, draft-6 and X-RateLimit-* into the default policy", () => {
    expect(
      parseRateLimitHeaders(
        new Headers({ RateLimit: "limit=10, remaining=3, reset=4", "RateLimit-Policy": "10;w=1" }),
        { nowMs: NOW },
      ),
    ).toEqual([{ policy: "default", limit: 10, remaining: 3, resetAtMs: NOW + 4000 }]);
    expect(
      parseRateLimitHeaders(
        { "RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "2" },
        { nowMs: NOW, defaultPolicy: "api" },
      ),
    ).toEqual([{ policy: "api", limit: 10, remaining: 0, resetAtMs: NOW + 2000 }]);
    expect(
      parseRateLimitHeaders(
        {
          "x-ratelimit-limit": "60",
          "x-ratelimit-remaining": "1",
          "x-ratelimit-reset": String(NOW / 1000 + 30),
        },
        { nowMs: NOW },
      ),
    ).toEqual([{ policy: "default", limit: 60, remaining: 1, resetAtMs: NOW + 30_000 }]);
  });

  it("reads Retry-After as seconds or an HTTP date and lends it to exhausted policies", () => {
    const r = parseRateLimitHeadersDetailed(
      { "ratelimit-policy": '"p";q=5;w=60', ratelimit: '"p";r=0', "retry-after": "7" },
      { nowMs: NOW },
    );
    expect(r.retryAfterMs).toBe(7000);
    expect(r.observations).toEqual([
      { policy: "p", limit: 5, remaining: 0, resetAtMs: NOW + 7000 },
    ]);
    const date = new Date(NOW + 20_000).toUTCString();
    expect(
      parseRateLimitHeadersDetailed({ "Retry-After": date }, { nowMs: NOW }).retryAfterMs,
    ).toBe(20_000);
  });

  it("reports malformed values as issues and never throws", () => {
    const r = parseRateLimitHeadersDetailed(
      { ratelimit: '"p";r=-1;t=x', "ratelimit-policy": "bad name;q=1", "retry-after": "soon" },
      { nowMs: NOW },
    );
    expect(r.observations).toEqual([]);
    expect(r.issues.map((i) => i.header).sort()).toEqual([
      "ratelimit",
      "ratelimit",
      "ratelimit-policy",
      "retry-after",
    ]);
    expect(parseRateLimitHeaders(null as never)).toEqual([]);
  });

  it("round-trips what rateLimitHeaders writes, for any decision of real policies", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 0, max: 60 }),
        fc.constantFrom("draft-8" as const, "draft-7" as const, "draft-6" as const),
        async (capacity, limit, cost, standard) => {
          const limiter = limiterAt([
            { kind: "tokenBucket", name: "b", capacity, refill: { tokens: 1, every: "1s" } },
            { kind: "fixedWindow", name: "w", limit, window: "1h" },
          ]);
          const d = await limiter.take("k", { cost });
          const obs = parseRateLimitHeaders(rateLimitHeaders(d, { standard, nowMs: NOW }), {
            nowMs: NOW,
          });
          // The binding policy: refused -> the blocker with the latest reset, else fewest by ratio.
          const rate = d.policies;
          const expected = d.allowed
            ? rate.reduce((a, p) => (p.remaining / p.limit < a.remaining / a.limit ? p : a))
            : rate
                .filter((p) => d.blockedBy.includes(p.name))
                .reduce((a, p) => (p.resetAtMs > a.resetAtMs ? p : a));
          const bind = standard === "draft-8" ? obs.find((o) => o.remaining !== undefined) : obs[0];
          if (standard === "draft-8") expect(bind?.policy).toBe(expected.name);
          expect(bind?.limit).toBe(expected.limit);
          expect(bind?.remaining).toBe(expected.remaining);
          const resetS = Math.ceil((expected.resetAtMs - NOW) / 1000);
          expect(bind?.resetAtMs).toBe(NOW + Math.max(0, resetS) * 1000);
        },
      ),
      { numRuns: 100 },
    );
  });
});
