import { parseKeapHeaders, parseKeapHeadersDetailed } from "@sluice/adapter-keap";
import { describe, expect, it } from "vitest";

const EXPIRY_MS = 1_771_459_200_000; // 2026-02-19T00:00:00Z (Keap's documented sample)
const NOW = EXPIRY_MS - 3_600_000;
const opts = { nowMs: NOW };

/** The sample headers of Keap's response headers (docs/keap.md). */
const SAMPLE: Record<string, string> = {
  "x-keap-product-spike-limit": "",
  "x-keap-product-throttle-limit": "240",
  "x-keap-product-throttle-available": "239",
  "x-keap-product-throttle-time-unit": "minute",
  "x-keap-product-throttle-used": "1",
  "x-keap-product-throttle-interval": "1",
  "x-keap-product-quota-limit": "30000",
  "x-keap-product-quota-available": "29999",
  "x-keap-product-quota-time-unit": "day",
  "x-keap-product-quota-used": "1",
  "x-keap-product-quota-interval": "1",
  "x-keap-product-quota-expiry-time": String(EXPIRY_MS),
  "x-keap-tenant-id": "ab103.infusionsoft.com",
  "x-keap-tenant-throttle-limit": "10000|250000",
  "x-keap-tenant-throttle-time-unit": "minute|day",
  "x-keap-tenant-throttle-interval": "1|1",
  "x-keap-tenant-throttle-available": "9999|249999",
  "x-keap-tenant-throttle-used": "1|1",
};

const SAMPLE_OBS = [
  { policy: "throttle", limit: 240, remaining: 239 },
  { policy: "quota", limit: 30_000, remaining: 29_999, resetAtMs: EXPIRY_MS },
  { policy: "tenantMinute", limit: 10_000, remaining: 9_999 },
  { policy: "tenantDay", limit: 250_000, remaining: 249_999 },
];

describe("Keap headers", () => {
  it("parses the Keap's documented sample (record input)", () => {
    const r = parseKeapHeadersDetailed(SAMPLE, opts);
    expect(r.observations).toEqual(SAMPLE_OBS);
    expect(r.issues).toEqual([]);
    expect(r.retryAfterMs).toBeUndefined();
    expect(parseKeapHeaders(SAMPLE, opts)).toEqual(SAMPLE_OBS);
  });

  it("parses the same sample from a Headers object, case-insensitively", () => {
    const h = new Headers();
    for (const [k, v] of Object.entries(SAMPLE)) h.set(k.toUpperCase(), v);
    expect(parseKeapHeaders(h, opts)).toEqual(SAMPLE_OBS);
    const upper = Object.fromEntries(Object.entries(SAMPLE).map(([k, v]) => [k.toUpperCase(), v]));
    expect(parseKeapHeaders(upper, opts)).toEqual(SAMPLE_OBS);
  });

  it("treats a 401 with every header blank as unknown: no observations, no zeros, no issues", () => {
    const blank = Object.fromEntries(Object.keys(SAMPLE).map((k) => [k, ""]));
    const r = parseKeapHeadersDetailed(blank, opts);
    expect(r.observations).toEqual([]);
    expect(r.issues).toEqual([]);
    const spaces = Object.fromEntries(Object.keys(SAMPLE).map((k) => [k, "  "]));
    expect(parseKeapHeaders(spaces, opts)).toEqual([]);
  });

  it("omits a blank field but keeps the known ones", () => {
    const obs = parseKeapHeaders(
      { "x-keap-product-throttle-limit": "240", "x-keap-product-throttle-available": "" },
      opts,
    );
    expect(obs).toEqual([{ policy: "throttle", limit: 240 }]);
    expect(obs[0]).not.toHaveProperty("remaining");
  });

  it("derives remaining from used when available is blank", () => {
    expect(
      parseKeapHeaders(
        {
          "x-keap-product-throttle-limit": "240",
          "x-keap-product-throttle-available": "",
          "x-keap-product-throttle-used": "40",
        },
        opts,
      ),
    ).toEqual([{ policy: "throttle", limit: 240, remaining: 200 }]);
  });

  it.each([
    ["epoch ms (13 digits)", String(EXPIRY_MS), EXPIRY_MS],
    ["epoch seconds (10 digits)", String(EXPIRY_MS / 1000), EXPIRY_MS],
    ["epoch seconds with spaces", ` ${EXPIRY_MS / 1000} `, EXPIRY_MS],
  ])("reads the quota expiry as %s", (_label, value, expected) => {
    expect(
      parseKeapHeaders(
        { "x-keap-product-quota-limit": "30000", "x-keap-product-quota-expiry-time": value },
        opts,
      ),
    ).toEqual([{ policy: "quota", limit: 30_000, resetAtMs: expected }]);
  });

  it.each([
    ["garbage", "tomorrow"],
    ["negative", "-1771459200000"],
    ["11 digits", "17714592000"],
    ["far future ms", String(NOW + 1000 * 86_400_000)],
    ["long past seconds", "100000000"],
    ["huge", "9".repeat(30)],
    ["exponent", "1.7e12"],
  ])("ignores an implausible expiry (%s) with an issue", (_label, value) => {
    const r = parseKeapHeadersDetailed(
      { "x-keap-product-quota-limit": "30000", "x-keap-product-quota-expiry-time": value },
      opts,
    );
    expect(r.observations).toEqual([{ policy: "quota", limit: 30_000 }]);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]?.header).toBe("x-keap-product-quota-expiry-time");
  });

  it("reads a single (older) tenant window and no tenant window", () => {
    expect(
      parseKeapHeaders(
        {
          "x-keap-tenant-throttle-limit": "5000",
          "x-keap-tenant-throttle-time-unit": "minute",
          "x-keap-tenant-throttle-available": "4990",
        },
        opts,
      ),
    ).toEqual([{ policy: "tenantMinute", limit: 5_000, remaining: 4_990 }]);
    const { "x-keap-tenant-throttle-limit": _, ...rest } = SAMPLE;
    const noTenant = Object.fromEntries(
      Object.entries(rest).filter(([k]) => !k.startsWith("x-keap-tenant-throttle")),
    );
    expect(parseKeapHeaders(noTenant, opts)).toEqual(SAMPLE_OBS.slice(0, 2));
  });

  it("maps tenant windows by time unit, not by position", () => {
    expect(
      parseKeapHeaders(
        {
          "x-keap-tenant-throttle-limit": "250000|10000",
          "x-keap-tenant-throttle-time-unit": "day|minute",
          "x-keap-tenant-throttle-available": "|9000",
        },
        opts,
      ),
    ).toEqual([
      { policy: "tenantDay", limit: 250_000 },
      { policy: "tenantMinute", limit: 10_000, remaining: 9_000 },
    ]);
  });

  it("skips tenant windows with unknown units, intervals other than 1, or repeats", () => {
    const r = parseKeapHeadersDetailed(
      {
        "x-keap-tenant-throttle-limit": "1|2|3|4",
        "x-keap-tenant-throttle-time-unit": "hour|minute|minute|",
        "x-keap-tenant-throttle-interval": "1|1|1|1",
      },
      opts,
    );
    expect(r.observations).toEqual([{ policy: "tenantMinute", limit: 2 }]);
    expect(r.issues.map((i) => i.reason)).toEqual([
      expect.stringContaining("unknown time unit"),
      expect.stringContaining("repeated time unit"),
      expect.stringContaining("unknown time unit"),
    ]);
    const r2 = parseKeapHeadersDetailed(
      {
        "x-keap-tenant-throttle-limit": "5000",
        "x-keap-tenant-throttle-time-unit": "minute",
        "x-keap-tenant-throttle-interval": "5",
      },
      opts,
    );
    expect(r2.observations).toEqual([]);
    expect(r2.issues).toHaveLength(1);
  });

  it("skips a product window whose unit or interval does not match the profile's", () => {
    const r = parseKeapHeadersDetailed(
      {
        "x-keap-product-throttle-limit": "240",
        "x-keap-product-throttle-time-unit": "hour",
        "x-keap-product-quota-limit": "30000",
        "x-keap-product-quota-interval": "7",
      },
      opts,
    );
    expect(r.observations).toEqual([]);
    expect(r.issues).toHaveLength(2);
  });

  it.each([
    ["negative", "-5"],
    ["NaN", "NaN"],
    ["1e400", "1e400"],
    ["Infinity", "Infinity"],
    ["huge", "10000000000001"],
    ["beyond 2^53", "99999999999999999999999"],
    ["decimal", "2.5"],
    ["hex", "0x10"],
    ["garbage", "240abc"],
    ["zero limit", "0"],
    ["emoji", "💥"],
    ["conflicting repeats", "240, 300"],
  ])("ignores a hostile limit (%s) with an issue and keeps the rest", (_label, value) => {
    const r = parseKeapHeadersDetailed(
      { "x-keap-product-throttle-limit": value, "x-keap-product-throttle-available": "10" },
      opts,
    );
    expect(r.observations).toEqual([{ policy: "throttle", remaining: 10 }]);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]).toMatchObject({ header: "x-keap-product-throttle-limit" });
  });

  it("accepts 0 remaining, and a repeated header whose values agree", () => {
    expect(
      parseKeapHeaders(
        {
          "x-keap-product-throttle-limit": ["240", "240"],
          "x-keap-product-throttle-available": "0",
        },
        opts,
      ),
    ).toEqual([{ policy: "throttle", limit: 240, remaining: 0 }]);
    const h = new Headers();
    h.append("x-keap-product-throttle-limit", "240");
    h.append("x-keap-product-throttle-limit", "240");
    expect(parseKeapHeaders(h, opts)).toEqual([{ policy: "throttle", limit: 240 }]);
  });

  it("never throws on hostile inputs", () => {
    const hostile: unknown[] = [
      null,
      undefined,
      42,
      "x-keap-product-throttle-limit: 5",
      [],
      [["x-keap-product-throttle-limit", "5"]],
      { "x-keap-product-throttle-limit": { toString: () => "5" } },
      { "x-keap-product-throttle-limit": [1, null, "5"] },
      { "x-keap-product-throttle-limit": Symbol("x") },
      { "x-keap-product-throttle-limit": 240 },
      {
        get "x-keap-product-throttle-limit"() {
          throw new Error("boom");
        },
      },
      new Proxy(
        {},
        {
          ownKeys() {
            throw new Error("boom");
          },
        },
      ),
      { ratelimit: '"a;q=1, ,;;;,"""', "ratelimit-policy": "\"x\";q=;w=, 'y';q=1" },
      { "retry-after": "a".repeat(100_000) },
    ];
    for (const h of hostile) {
      // biome-ignore lint/suspicious/noExplicitAny: deliberately ill-typed input
      const r = parseKeapHeadersDetailed(h as any, opts);
      expect(Array.isArray(r.observations)).toBe(true);
      expect(Array.isArray(r.issues)).toBe(true);
      for (const o of r.observations) {
        for (const v of [o.limit, o.remaining, o.resetAtMs]) {
          if (v !== undefined) expect(Number.isFinite(v) && v >= 0).toBe(true);
        }
      }
    }
    // biome-ignore lint/suspicious/noExplicitAny: deliberately ill-typed options
    expect(() => parseKeapHeadersDetailed({}, null as any)).not.toThrow();
  });

  it("reads a finite number value in a record and reports objects", () => {
    expect(parseKeapHeaders({ "x-keap-product-throttle-limit": 240 } as never, opts)).toEqual([
      { policy: "throttle", limit: 240 },
    ]);
    const r = parseKeapHeadersDetailed(
      { "x-keap-product-throttle-limit": { a: 1 } } as never,
      opts,
    );
    expect(r.observations).toEqual([]);
    expect(r.issues[0]?.reason).toBe("not a string");
  });
});

describe("IETF and X-RateLimit headers", () => {
  it("reads RateLimit-Policy and RateLimit structured lists by quoted name", () => {
    const obs = parseKeapHeaders(
      {
        "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
        RateLimit: '"burst";r=50;t=30',
      },
      opts,
    );
    expect(obs).toEqual([
      { policy: "burst", limit: 100, remaining: 50, resetAtMs: NOW + 30_000 },
      { policy: "daily", limit: 1000 },
    ]);
  });

  it("reads a RateLimit without a policy header, token names, and escaped names", () => {
    expect(parseKeapHeaders({ ratelimit: 'burst;r=0;t=1, "a\\"b";r=3' }, opts)).toEqual([
      { policy: "burst", remaining: 0, resetAtMs: NOW + 1000 },
      { policy: 'a"b', remaining: 3 },
    ]);
  });

  it("reports bad structured members and values but keeps good ones", () => {
    const r = parseKeapHeadersDetailed(
      { "ratelimit-policy": '"ok";q=10, 123;q=5, "neg";q=-1, "big";q=1e400' },
      opts,
    );
    expect(r.observations).toEqual([{ policy: "ok", limit: 10 }]);
    expect(r.issues).toHaveLength(3);
  });

  it("reads older RateLimit-Limit/-Remaining/-Reset (delay seconds) as policy default", () => {
    expect(
      parseKeapHeaders(
        { "RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "7", "RateLimit-Reset": "12" },
        opts,
      ),
    ).toEqual([{ policy: "default", limit: 100, remaining: 7, resetAtMs: NOW + 12_000 }]);
  });

  it("reads a draft-07 RateLimit dictionary as policy default", () => {
    expect(parseKeapHeaders({ RateLimit: "limit=100, remaining=50, reset=30" }, opts)).toEqual([
      { policy: "default", limit: 100, remaining: 50, resetAtMs: NOW + 30_000 },
    ]);
  });

  it.each([
    ["delay seconds", "30", NOW + 30_000],
    ["fractional delay", "1.5", NOW + 1500],
    ["epoch seconds", String((NOW + 60_000) / 1000), NOW + 60_000],
    ["epoch ms", String(NOW + 60_000), NOW + 60_000],
  ])("reads X-RateLimit-Reset as %s", (_label, value, expected) => {
    expect(
      parseKeapHeaders(
        { "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": value },
        opts,
      ),
    ).toEqual([{ policy: "default", limit: 60, remaining: 59, resetAtMs: expected }]);
  });

  it.each([
    ["negative", "-30"],
    ["garbage", "soon"],
    ["far epoch ms", String(NOW + 10_000 * 86_400_000)],
    ["huge", "1e400"],
  ])("ignores a bad X-RateLimit-Reset (%s)", (_label, value) => {
    const r = parseKeapHeadersDetailed(
      { "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": value },
      opts,
    );
    expect(r.observations).toEqual([{ policy: "default", remaining: 1 }]);
    expect(r.issues).toHaveLength(1);
  });

  it("prefers RateLimit-* over X-RateLimit-* for the same fields", () => {
    expect(
      parseKeapHeaders(
        { "RateLimit-Limit": "100", "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "5" },
        opts,
      ),
    ).toEqual([{ policy: "default", limit: 100, remaining: 5 }]);
  });
});

describe("Retry-After", () => {
  it.each([
    ["seconds", "120", 120_000],
    ["zero", "0", 0],
    ["HTTP date", new Date(NOW + 90_000).toUTCString(), 90_000],
    ["past HTTP date", new Date(NOW - 90_000).toUTCString(), 0],
    ["decimal seconds", "1.5", 1_500],
    ["decimal seconds, rounded up to the ms", "0.0004", 1],
  ])("reads %s", (_label, value, expected) => {
    const r = parseKeapHeadersDetailed({ "Retry-After": value }, opts);
    expect(r.retryAfterMs).toBe(expected);
    expect(r.issues).toEqual([]);
    expect(r.observations).toEqual([]);
  });

  it.each([["-5"], ["soon"], ["1.5e3"], ["Wed, 99 Foo 2026 99:99:99 GMT"], ["99999999999"]])(
    "ignores %s with an issue",
    (value) => {
      const r = parseKeapHeadersDetailed({ "retry-after": value }, opts);
      expect(r.retryAfterMs).toBeUndefined();
      expect(r.issues).toHaveLength(1);
    },
  );

  it("is absent when blank", () => {
    const r = parseKeapHeadersDetailed({ "retry-after": " " }, opts);
    expect(r).toEqual({ observations: [], issues: [] });
  });

  it("is the reset of a Keap window reported empty without one", () => {
    const r = parseKeapHeadersDetailed(
      {
        "x-keap-product-throttle-limit": "240",
        "x-keap-product-throttle-available": "0",
        "retry-after": "2.5",
      },
      opts,
    );
    expect(r.observations).toEqual([
      { policy: "throttle", limit: 240, remaining: 0, resetAtMs: NOW + 2_500 },
    ]);
  });
});

describe("X-Apigee-* headers", () => {
  it("reads the x-apigee- twins of Keap's names (sent until 2022), Keap's own winning", () => {
    const apigee = Object.fromEntries(
      Object.entries(SAMPLE).map(([name, value]) => [name.replace("x-keap-", "X-Apigee-"), value]),
    );
    expect(parseKeapHeaders(apigee, opts)).toEqual(SAMPLE_OBS);
    expect(
      parseKeapHeaders(
        {
          "x-apigee-product-throttle-limit": "240",
          "x-apigee-product-throttle-available": "100",
          "x-keap-product-throttle-available": "90",
        },
        opts,
      ),
    ).toEqual([{ policy: "throttle", limit: 240, remaining: 90 }]);
  });
});
