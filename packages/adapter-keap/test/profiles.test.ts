import {
  KeapQuotaExhaustedError,
  keapPartitions,
  keapPolicies,
  keapProfiles,
  parseKeapHeaders,
  spikeSpacingMs,
} from "@sluice/adapter-keap";
import {
  createLimiter,
  createTenantRegistry,
  durationToMs,
  type Policy,
  SluiceError,
} from "@sluice/core";
import { compilePolicies } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";

const NAMES = ["keap:oauth", "keap:pat", "keap:sak", "keap:legacy", "keap:org-daily-2500"];

/** docs/keap.md "Policy names": names in order, with their scopes ("Profiles" table). */
const EXPECTED: Record<string, [string, string[]][]> = {
  "keap:oauth": [
    ["spike", ["app"]],
    ["throttle", ["app"]],
    ["quota", ["app"]],
    ["tenantMinute", ["tenant"]],
    ["tenantDay", ["tenant"]],
  ],
  "keap:pat": [
    ["spike", ["token"]],
    ["throttle", ["tenant"]],
    ["quota", ["tenant"]],
    ["tenantMinute", ["tenant"]],
    ["tenantDay", ["tenant"]],
  ],
  "keap:legacy": [
    ["pool", ["app"]],
    ["spike", ["app"]],
  ],
  "keap:org-daily-2500": [
    ["daily", ["tenant"]],
    ["concurrent", ["tenant"]],
  ],
};
EXPECTED["keap:sak"] = EXPECTED["keap:pat"]!;

const byName = (profile: string, name: string): Policy => {
  const p = keapProfiles[profile]?.policies.find((x) => x.name === name);
  if (p === undefined) throw new Error(`${profile} has no ${name}`);
  return p;
};

describe("keapProfiles", () => {
  it("has exactly the five profiles, each with a partition", () => {
    expect(Object.keys(keapProfiles).sort()).toEqual([...NAMES].sort());
    for (const name of NAMES) {
      expect(keapProfiles[name]!.partitionBy).toBe(keapPartitions[name]);
    }
    expect(keapPartitions).toEqual({
      "keap:oauth": "app",
      "keap:pat": "tenant",
      "keap:sak": "tenant",
      "keap:legacy": "app",
      "keap:org-daily-2500": "tenant",
    });
  });

  it.each(NAMES)("%s compiles", (name) => {
    expect(() => compilePolicies(keapProfiles[name]!.policies)).not.toThrow();
  });

  it.each(NAMES)("%s has the documented policy names, order and scopes", (name) => {
    expect(keapProfiles[name]?.policies.map((p) => [p.name, p.scope])).toEqual(EXPECTED[name]);
  });

  it("uses the strictest credible defaults", () => {
    expect(byName("keap:oauth", "throttle")).toMatchObject({
      kind: "slidingWindow",
      limit: 1500,
      window: "1m",
    });
    expect(byName("keap:oauth", "quota")).toMatchObject({
      kind: "fixedWindow",
      limit: 150_000,
      window: "1d",
    });
    expect(byName("keap:pat", "throttle")).toMatchObject({ kind: "slidingWindow", limit: 240 });
    expect(byName("keap:pat", "quota")).toMatchObject({ kind: "fixedWindow", limit: 30_000 });
    for (const profile of ["keap:oauth", "keap:pat", "keap:sak"]) {
      // Enforced since 2026-06-08 (KEAP.md "Settled 2026-12"); 5,000 was an older value.
      expect(byName(profile, "tenantMinute")).toMatchObject({ limit: 10_000, window: "1m" });
      expect(byName(profile, "tenantDay")).toMatchObject({
        kind: "fixedWindow",
        limit: 250_000,
        window: "1d",
      });
    }
    expect(byName("keap:legacy", "pool")).toEqual({
      kind: "pool",
      name: "pool",
      scope: ["app"],
      capacity: 10_000,
      refill: { tokens: 1, every: 500 },
    });
    expect(byName("keap:org-daily-2500", "daily")).toMatchObject({ limit: 2500, window: "1d" });
    expect(byName("keap:org-daily-2500", "concurrent")).toMatchObject({
      kind: "concurrency",
      limit: 3,
      leaseTtl: "2m",
    });
  });

  it("daily windows are calendar days in UTC (no time zone by default)", () => {
    for (const [profile, name] of [
      ["keap:oauth", "quota"],
      ["keap:pat", "quota"],
      ["keap:pat", "tenantDay"],
      ["keap:org-daily-2500", "daily"],
    ] as const) {
      const p = byName(profile, name);
      expect(p).not.toHaveProperty("timeZone");
      expect((p as { align?: string }).align ?? "calendar").toBe("calendar");
    }
  });

  it.each([
    ["keap:oauth", 25],
    ["keap:pat", 5],
    ["keap:sak", 5],
    ["keap:legacy", 25],
  ] as const)("%s spike paces by spacing at least 10%% longer than 1/%i s", (profile, rate) => {
    const p = byName(profile, "spike");
    expect(p.kind).toBe("tokenBucket");
    if (p.kind !== "tokenBucket") return;
    expect(p.capacity).toBe(1);
    expect(p.refill.tokens).toBe(1);
    const every = durationToMs(p.refill.every) as number;
    expect(every).toBeGreaterThanOrEqual((1000 / rate) * 1.1 - 1e-9);
    expect(every).toBeLessThan((1000 / rate) * 1.1 + 1);
  });

  it("spikeSpacingMs avoids float round-up", () => {
    expect(spikeSpacingMs(25)).toBe(44);
    expect(spikeSpacingMs(5)).toBe(220);
    expect(spikeSpacingMs(10)).toBe(110);
  });

  it("pat + partitionBy tenant admits a first request for { tenant, token }", async () => {
    const limiter = createLimiter({
      store: memoryStore(),
      ...keapProfiles["keap:pat"],
    });
    const key = { tenant: "ab103", token: "pat-1" };
    const first = await limiter.take(key);
    expect(first.allowed).toBe(true);
    // The spike bucket holds one: an immediate second request on the same token is refused...
    expect((await limiter.take(key)).allowed).toBe(false);
    // ...while another key of the tenant has its own spike slot.
    expect((await limiter.take({ tenant: "ab103", token: "pat-2" })).allowed).toBe(true);
  });

  it("observations parsed from Keap headers reconcile into a pat limiter", async () => {
    const limiter = createLimiter({
      store: memoryStore(),
      policies: keapProfiles["keap:pat"].policies,
      partitionBy: "tenant",
    });
    const key = { tenant: "ab103", token: "pat-1" };
    const obs = parseKeapHeaders(
      {
        "x-keap-product-throttle-limit": "240",
        "x-keap-product-throttle-available": "0",
        "x-keap-tenant-throttle-limit": "10000|250000",
        "x-keap-tenant-throttle-time-unit": "minute|day",
        "x-keap-tenant-throttle-available": "9999|249999",
        "RateLimit-Policy": '"other";q=5',
      },
      { nowMs: Date.now() },
    );
    await expect(limiter.reconcile(key, obs)).resolves.toBeUndefined();
    // The server said no throttle capacity is left for this token.
    const d = await limiter.take({ tenant: "ab103", token: "pat-1" });
    expect(d.allowed).toBe(false);
  });

  it("oauth needs a tenant for the full list; keapPolicies({ tenant: false }) drops tenant windows", async () => {
    const full = createLimiter({
      store: memoryStore(),
      policies: keapProfiles["keap:oauth"].policies,
      partitionBy: "app",
    });
    await expect(full.take({ app: "client-id" })).rejects.toBeInstanceOf(SluiceError);
    expect((await full.take({ app: "client-id", tenant: "ab103" })).allowed).toBe(true);

    const appOnly = keapPolicies("keap:oauth", { tenant: false });
    expect(appOnly.map((p) => p.name)).toEqual(["spike", "throttle", "quota"]);
    const limiter = createLimiter({ store: memoryStore(), policies: appOnly, partitionBy: "app" });
    expect((await limiter.take({ app: "client-id" })).allowed).toBe(true);
  });

  it("keapPolicies returns a copy", () => {
    const copy = keapPolicies("keap:pat");
    expect(copy).toEqual(keapProfiles["keap:pat"].policies);
    (copy[0] as { name: string }).name = "changed";
    expect(keapProfiles["keap:pat"].policies[0]?.name).toBe("spike");
    expect(keapPolicies("keap:pat", { tenant: false })).toHaveLength(5);
  });

  it("works as createTenantRegistry profiles with overrides by policy name", () => {
    const registry = createTenantRegistry({
      store: memoryStore(),
      profiles: keapProfiles,
      config: {
        defaults: { profile: "keap:oauth" },
        tenants: { acme: { profile: "keap:pat", overrides: { quota: { limit: 250000 } } } },
      },
    });
    expect(registry.limiter("acme")).toBeDefined();
  });
});

describe("KeapQuotaExhaustedError", () => {
  it("is a retryable QUOTA_EXHAUSTED SluiceError with policy and resetAtMs", () => {
    const cause = new Error("429");
    const e = new KeapQuotaExhaustedError("quota", 1_771_459_200_000, { cause });
    expect(e).toBeInstanceOf(SluiceError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe("QUOTA_EXHAUSTED");
    expect(e.retryable).toBe(true);
    expect(e.policy).toBe("quota");
    expect(e.resetAtMs).toBe(1_771_459_200_000);
    expect(e.name).toBe("KeapQuotaExhaustedError");
    expect(e.message).toContain("2026-02-19T00:00:00.000Z");
    expect(e.cause).toBe(cause);
  });
});
