import {
  ConfigError,
  createLimiter,
  createTenantRegistry,
  type Policy,
  parseTenantConfig,
} from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const profiles: Record<string, Policy[]> = {
  "test:pat": [
    {
      kind: "tokenBucket",
      name: "spike",
      scope: ["token"],
      capacity: 10,
      refill: { tokens: 1, every: "1s" },
    },
    { kind: "fixedWindow", name: "quota", scope: ["tenant"], limit: 5, window: "1d" },
  ],
};

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("parseTenantConfig", () => {
  it("accepts the API example and a top-level $schema", () => {
    const cfg = parseTenantConfig(
      {
        $schema: "x",
        defaults: { profile: "test:pat" },
        tenants: { acme: { profile: "test:pat", overrides: { quota: { limit: 250000 } } } },
      },
      { profiles },
    );
    expect(cfg.tenants.acme?.profile).toBe("test:pat");
  });

  it("lists every problem at once with exact paths and did-you-mean", () => {
    const issues = issuesOf(() =>
      parseTenantConfig(
        {
          tenant: {},
          tenants: {
            acme: { policies: [{ kind: "fixedWindow", name: "d", limit: -1, window: "1d" }] },
            "ab103.infusionsoft.com": { profile: "test:pta" },
            beta: { profiel: "test:pat" },
          },
        },
        { profiles },
      ),
    );
    const paths = issues.map((i) => i.path);
    expect(paths).toContain("tenant");
    expect(paths).toContain("tenants.acme.policies[0].limit");
    expect(paths).toContain('tenants["ab103.infusionsoft.com"].profile');
    expect(paths).toContain("tenants.beta.profiel");
    expect(issues.find((i) => i.path === "tenants.beta.profiel")?.message).toMatch(
      /did you mean "profile"/,
    );
    expect(issues.find((i) => i.path.endsWith(".profile"))?.message).toMatch(
      /did you mean "test:pat"/,
    );
  });

  it("refuses overrides of missing policies and of kind, name or scope", () => {
    const issues = issuesOf(() =>
      parseTenantConfig(
        {
          tenants: {
            a: { profile: "test:pat", overrides: { daily: { limit: 1 }, quota: { kind: "pool" } } },
          },
        },
        { profiles },
      ),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "tenants.a.overrides.daily",
      "tenants.a.overrides.quota.kind",
    ]);
  });

  it("validates overrides after merging, with paths at the override field", () => {
    const issues = issuesOf(() =>
      parseTenantConfig(
        {
          tenants: { a: { profile: "test:pat", overrides: { spike: { refill: { tokens: 0 } } } } },
        },
        { profiles },
      ),
    );
    expect(issues.map((i) => i.path)).toEqual(["tenants.a.overrides.spike.refill.tokens"]);
  });

  it("refuses a tenant left without policies, naming it", () => {
    const issues = (() => {
      try {
        parseTenantConfig({ tenants: { a: {}, b: { profile: "test:pat" } } }, { profiles });
        return [];
      } catch (e) {
        return (e as ConfigError).issues;
      }
    })();
    expect(issues.map((i) => i.path)).toEqual(["tenants.a"]);
  });

  it("property: any config that parses builds lists createLimiter accepts", () => {
    const policy = fc.record({
      kind: fc.constant("fixedWindow" as const),
      name: fc.constantFrom("spike", "quota", "x"),
      limit: fc.integer({ min: 1, max: 1000 }),
      window: fc.constantFrom("1s", "1m", "1d"),
    });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 5 }),
          fc.record(
            {
              profile: fc.constant("test:pat"),
              policies: fc.array(policy, { maxLength: 3 }),
              overrides: fc.dictionary(
                fc.constantFrom("spike", "quota"),
                fc.record({ limit: fc.integer({ min: 1, max: 9 }) }),
              ),
            },
            { requiredKeys: [] },
          ),
          { maxKeys: 5 },
        ),
        (tenants) => {
          let ok = true;
          try {
            parseTenantConfig({ tenants }, { profiles });
          } catch {
            ok = false;
          }
          if (!ok) return;
          const reg = createTenantRegistry({ config: { tenants }, store: memoryStore(), profiles });
          for (const id of Object.keys(tenants)) expect(reg.limiter(id)).toBeDefined();
          reg.close();
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("createTenantRegistry", () => {
  const custom = (limit: number) => ({
    tenants: { acme: { policies: [{ kind: "fixedWindow", name: "daily", limit, window: "1d" }] } },
  });

  it("returns the same limiter each time and refuses unknown tenants without defaults", () => {
    const reg = createTenantRegistry({ config: custom(5), store: memoryStore() });
    expect(reg.limiter("acme")).toBe(reg.limiter("acme"));
    expect(() => reg.limiter("nobody")).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(reg.tenants()).toEqual(["acme"]);
  });

  it("uses defaults for a tenant not in the file", async () => {
    const reg = createTenantRegistry({
      config: { defaults: { profile: "test:pat" }, tenants: {} },
      store: memoryStore(),
      profiles,
    });
    const d = await reg.limiter("zed").take({ tenant: "zed", token: "t" });
    expect(d.policies.map((p) => p.name)).toEqual(["spike", "quota"]);
  });

  it("keeps consumption on reload: limit 5 -> 10 with 3 used leaves 7, and an earlier limiter follows", async () => {
    const reg = createTenantRegistry({ config: custom(5), store: memoryStore() });
    const l = reg.limiter("acme");
    for (let i = 0; i < 3; i++) await l.take("k");
    reg.update(custom(10));
    expect((await l.peek("k")).remaining).toBe(7);
    expect(reg.limiter("acme")).toBe(l);
  });

  it("changes nothing when an update is invalid", async () => {
    const reg = createTenantRegistry({ config: custom(5), store: memoryStore() });
    const l = reg.limiter("acme");
    expect(() => reg.update(custom(-1))).toThrow(ConfigError);
    expect((await l.peek("k")).remaining).toBe(5);
  });

  it("a removed tenant's limiter refuses new work with INVALID_ARGUMENT", async () => {
    const reg = createTenantRegistry({ config: custom(5), store: memoryStore() });
    const l = reg.limiter("acme");
    reg.update({ tenants: {} });
    await expect(async () => l.take("k")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("applies a profile's new partitionBy to the live limiter on update", async () => {
    const quota: Policy = {
      kind: "fixedWindow",
      name: "quota",
      scope: ["tenant"],
      limit: 5,
      window: "1d",
    };
    const byApp = { app: { policies: [quota], partitionBy: "app" } };
    const byTenant = { tenant: { policies: [quota], partitionBy: "tenant" } };
    const reg = createTenantRegistry({
      config: { tenants: { acme: { profile: "app" } } },
      store: memoryStore(),
      profiles: { ...byApp, ...byTenant },
    });
    const l = reg.limiter("acme");
    // Partitioned by app: a key without one is malformed.
    await expect(async () => l.take({ tenant: "acme" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    reg.update({ tenants: { acme: { profile: "tenant" } } });
    expect(reg.limiter("acme")).toBe(l);
    expect((await l.take({ tenant: "acme" })).allowed).toBe(true);
    // And back: a failed update in between leaves the partition as it was.
    expect(() => reg.update({ tenants: { acme: { profile: "nope" } } })).toThrow(ConfigError);
    expect((await l.take({ tenant: "acme" })).allowed).toBe(true);
    reg.update({ tenants: { acme: { profile: "app" } } });
    await expect(async () => l.take({ tenant: "acme" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });

  it("namespaces each tenant's state", async () => {
    const cfg = { tenants: { a: custom(1).tenants.acme, b: custom(1).tenants.acme } };
    const reg = createTenantRegistry({ config: cfg, store: memoryStore() });
    expect((await reg.limiter("a").take("k")).allowed).toBe(true);
    expect((await reg.limiter("b").take("k")).allowed).toBe(true);
    expect(createLimiter).toBeTypeOf("function");
  });
});
