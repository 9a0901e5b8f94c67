import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createKeapClient, keapProfiles } from "@sluice/adapter-keap";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";
import {
  ConfigError,
  createLimiter,
  createTenantRegistry,
  type Policy,
  parseRateLimitHeaders,
  parseTenantConfig,
} from "@sluice/core";
import type { Store } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";
import { postgresStore } from "@sluice/store-postgres";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import pg from "pg";
import { describe, expect, it } from "vitest";

// One test per defect of "Options are checked" (API.md): each failed before the checks existed.

/** The issues of the ConfigError `fn` throws (sync or async). */
async function issuesOf(fn: () => unknown): Promise<readonly { path: string; message: string }[]> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const { issues } = e as ConfigError;
    for (const i of issues) {
      // Our own wording only: nothing of a validation library's.
      expect(i.message).not.toMatch(
        /Invalid string|must match pattern|Invalid input|expected \w+ to be/,
      );
    }
    return issues;
  }
  throw new Error("expected a ConfigError");
}

const windowOf = (window: unknown) =>
  [{ kind: "fixedWindow", name: "daily", limit: 5, window }] as unknown as Policy[];

/** A store that records how many requests reached it. */
function counting(): { store: Store; calls: () => number } {
  const inner = memoryStore();
  let n = 0;
  return {
    store: {
      capabilities: inner.capabilities,
      execute(request) {
        n++;
        return inner.execute(request);
      },
    },
    calls: () => n,
  };
}

describe("durations", () => {
  it.each([
    "0s",
    "00ms",
    "0ms",
    "1000000000000d",
    "1.5s",
    " 1s",
    0,
    -1,
    1.5,
    2 ** 53,
    Number.NaN,
    "101y",
  ])("createLimiter refuses the window %j with a ConfigError naming it", async (window) => {
    const issues = await issuesOf(() =>
      createLimiter({ store: memoryStore(), policies: windowOf(window) }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("policies[0].window");
    expect(issues[0]!.message).toMatch(/^window must be a duration from 1 ms to 100 years/);
  });

  it("refuses more than 100 years and accepts exactly 100 years", async () => {
    const years100 = 100 * 365.25 * 86_400_000;
    expect(() =>
      createLimiter({ store: memoryStore(), policies: windowOf(years100) }),
    ).not.toThrow();
    expect(() =>
      createLimiter({ store: memoryStore(), policies: windowOf("36525d") }),
    ).not.toThrow();
    const issues = await issuesOf(() =>
      createLimiter({ store: memoryStore(), policies: windowOf("36526d") }),
    );
    expect(issues[0]!.path).toBe("policies[0].window");
  });

  it("parseTenantConfig refuses a zero duration, with the tenant in the path", async () => {
    const config = { tenants: { acme: { policies: windowOf("0s") } } };
    const issues = await issuesOf(() => parseTenantConfig(config));
    expect(issues.map((i) => i.path)).toEqual(["tenants.acme.policies[0].window"]);
  });

  it("a refill period and a lease TTL go through the same check", async () => {
    const issues = await issuesOf(() =>
      createLimiter({
        store: memoryStore(),
        policies: [
          { kind: "tokenBucket", name: "b", capacity: 1, refill: { tokens: 1, every: "0m" } },
          { kind: "concurrency", name: "c", limit: 1, leaseTtl: "00ms" },
          { kind: "slidingWindow", name: "s", limit: 1, window: "1m", precision: "0s" },
        ],
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "policies[0].refill.every",
      "policies[1].leaseTtl",
      "policies[2].precision",
    ]);
  });

  it.each([
    ["timeoutMs", { timeoutMs: 0 }],
    ["learnedLimitTtlMs", { learnedLimitTtlMs: 1e300 }],
    ["breaker.probeMs", { breaker: { probeMs: 0.5 } }],
  ])("limiter option %s is a duration from 1 ms to 100 years", async (path, extra) => {
    const issues = await issuesOf(() =>
      createLimiter({ store: memoryStore(), policies: windowOf("1s"), ...extra }),
    );
    expect(issues.map((i) => i.path)).toEqual([path]);
  });
});

describe("unknown option names", () => {
  it("createLimiter: onStoreErorr, did you mean onStoreError", async () => {
    const issues = await issuesOf(() =>
      createLimiter({
        store: memoryStore(),
        policies: windowOf("1s"),
        onStoreErorr: "allow",
      } as never),
    );
    expect(issues).toEqual([
      { path: "onStoreErorr", message: 'unknown option (did you mean "onStoreError"?)' },
    ]);
    const ConfigErrorText = await createLimiterMessage({ onStoreErorr: "allow" });
    expect(ConfigErrorText).toContain(
      'onStoreErorr: unknown option (did you mean "onStoreError"?)',
    );
  });

  it("createLimiter: timeout, did you mean timeoutMs", async () => {
    const issues = await issuesOf(() =>
      createLimiter({ store: memoryStore(), policies: windowOf("1s"), timeout: 50 } as never),
    );
    expect(issues).toEqual([
      { path: "timeout", message: 'unknown option (did you mean "timeoutMs"?)' },
    ]);
  });

  it("parseRateLimitHeaders: defaultPolcy and a nowMs string are the caller's errors", async () => {
    const headers = { "ratelimit-limit": "10", "ratelimit-remaining": "3" };
    expect(
      await issuesOf(() => parseRateLimitHeaders(headers, { defaultPolcy: "api" } as never)),
    ).toEqual([
      { path: "defaultPolcy", message: 'unknown option (did you mean "defaultPolicy"?)' },
    ]);
    expect(
      await issuesOf(() =>
        parseRateLimitHeaders(headers, { nowMs: "soon", defaultPolicy: "" } as never),
      ),
    ).toEqual([
      { path: "nowMs", message: 'nowMs must be a finite number of epoch ms (got "soon")' },
      { path: "defaultPolicy", message: 'defaultPolicy must be a non-empty policy name (got "")' },
    ]);
    // The server's headers are never an error.
    expect(parseRateLimitHeaders({ "ratelimit-limit": "x" }, { defaultPolicy: "api" })).toEqual([]);
  });

  it("memoryStore: maxkeys, did you mean maxKeys", async () => {
    const issues = await issuesOf(() => memoryStore({ maxkeys: 10 } as never));
    expect(issues).toEqual([
      { path: "maxkeys", message: 'unknown option (did you mean "maxKeys"?)' },
    ]);
  });

  it("postgresStore: tabel, did you mean table (instead of the shared default table)", async () => {
    const pool = new pg.Pool({ connectionString: "postgres://127.0.0.1:1/none" });
    try {
      const issues = await issuesOf(() => postgresStore({ pool, tabel: "mine" } as never));
      expect(issues).toEqual([
        { path: "tabel", message: 'unknown option (did you mean "table"?)' },
      ]);
    } finally {
      await pool.end();
    }
  });

  it("redisStore: prefx, did you mean prefix", async () => {
    const client = new Redis({ lazyConnect: true });
    try {
      const issues = await issuesOf(() => redisStore({ client, prefx: "a" } as never));
      expect(issues).toEqual([
        { path: "prefx", message: 'unknown option (did you mean "prefix"?)' },
      ]);
    } finally {
      client.disconnect();
    }
  });

  it("take(k, { cots: 5 }) is refused before any store call, and charges nothing", async () => {
    const { store, calls } = counting();
    const limiter = createLimiter({ store, policies: windowOf("1m") });
    const issues = await issuesOf(() => limiter.take("k", { cots: 5 } as never));
    expect(issues).toEqual([{ path: "cots", message: 'unknown option (did you mean "cost"?)' }]);
    expect(calls()).toBe(0);
    expect((await limiter.peek("k")).remaining).toBe(5);
  });

  it("tryAcquire and refund check their options too", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: windowOf("1m") });
    const a = await issuesOf(() => limiter.tryAcquire("k", { cots: 1 } as never));
    expect(a[0]!.path).toBe("cots");
    const r = await issuesOf(() => limiter.refund("k", { costs: 1 } as never));
    expect(r[0]!.message).toBe('unknown option (did you mean "cost"?)');
  });

  it("wait(k, { timeout: 10 }) is refused instead of waiting without a deadline", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies: windowOf("1m") });
    const issues = await issuesOf(() => limiter.wait("k", { timeout: 10 } as never));
    expect(issues).toEqual([
      { path: "timeout", message: 'unknown option (did you mean "timeoutMs"?)' },
    ]);
    const acquire = await issuesOf(() => limiter.acquire("k", { timeout: 10 } as never));
    expect(acquire[0]!.path).toBe("timeout");
  });

  it("a cost stays a per-call argument: INVALID_ARGUMENT before any store call", async () => {
    const { store, calls } = counting();
    const limiter = createLimiter({ store, policies: windowOf("1m") });
    for (const cost of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, "2"]) {
      await expect(limiter.take("k", { cost } as never)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    }
    expect(calls()).toBe(0);
  });

  it("createTenantRegistry: unknown names, at the top and in limiterOptions", async () => {
    const issues = await issuesOf(() =>
      createTenantRegistry({
        config: { tenants: {} },
        store: memoryStore(),
        prefx: "x",
        limiterOptions: { timeout: 5 },
      } as never),
    );
    expect(issues).toEqual([
      { path: "prefx", message: 'unknown option (did you mean "prefix"?)' },
      { path: "limiterOptions.timeout", message: 'unknown option (did you mean "timeoutMs"?)' },
    ]);
  });

  it("createKeapClient: every bad value is one ConfigError with issues, not INVALID_ARGUMENT", async () => {
    const issues = await issuesOf(() =>
      createKeapClient({
        profile: "pat",
        store: memoryStore(),
        identity: { tenant: "ab103" },
        maxRetries: -1,
        spikeMargin: Number.NaN,
        maxWait: 10,
      } as never),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "maxWait",
      "identity.token",
      "maxRetries",
      "spikeMargin",
    ]);
    expect(issues[0]!.message).toBe('unknown option (did you mean "maxWaitMs"?)');
  });

  it("startKeapSimulator: limts, did you mean limits", async () => {
    const issues = await issuesOf(() => startKeapSimulator({ profile: "pat", limts: {} } as never));
    expect(issues[0]).toEqual({
      path: "limts",
      message: 'unknown option (did you mean "limits"?)',
    });
  });
});

async function createLimiterMessage(extra: object): Promise<string> {
  try {
    createLimiter({ store: memoryStore(), policies: windowOf("1s"), ...extra } as never);
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

describe("registry.update is all or nothing", () => {
  const config = (one: unknown, two: unknown) => ({
    tenants: {
      one: { policies: windowOf(one) },
      two: { policies: windowOf(two) },
    },
  });

  it("a file whose second tenant is bad leaves the first tenant's limit unchanged", async () => {
    const reg = createTenantRegistry({ config: config("1d", "1d"), store: memoryStore() });
    const one = reg.limiter("one");
    const two = reg.limiter("two");
    const limitOf = async (l: typeof one) => (await l.peek("k")).policies[0]!.limit;
    const next = {
      tenants: {
        one: { policies: [{ kind: "fixedWindow", name: "daily", limit: 7, window: "1d" }] },
        two: { policies: windowOf("0s") },
      },
    };
    const issues = await issuesOf(() => reg.update(next));
    expect(issues.map((i) => i.path)).toEqual(["tenants.two.policies[0].window"]);
    expect(await limitOf(one)).toBe(5);
    expect(await limitOf(two)).toBe(5);
    expect(reg.limiter("one")).toBe(one);
  });
});

describe("the registry holds each tenant's limiter strongly", () => {
  it("limiter(id) is the same instance, listeners included, after a garbage collection", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const reg = createTenantRegistry({
      config: { tenants: { acme: { policies: windowOf("1m") } } },
      store: memoryStore(),
    });
    const seen: number[] = [];
    // Held only through a WeakRef here: nothing but the registry keeps the limiter alive.
    const ref = (() => {
      const l = reg.limiter("acme");
      l.on("decision", (d) => seen.push(d.decision.remaining));
      return new WeakRef(l);
    })();
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(ref.deref()).toBeDefined();
    expect(reg.limiter("acme")).toBe(ref.deref());
    await reg.limiter("acme").take("k");
    expect(seen).toEqual([4]);
  });
});

describe("profiles", () => {
  it("keapProfiles let a registry on a partition-requiring store take { tenant, token } keys", async () => {
    const inner = memoryStore();
    const store: Store = {
      capabilities: { ...inner.capabilities, requiresPartition: true },
      execute: (r) => inner.execute(r),
    };
    const reg = createTenantRegistry({
      config: { tenants: { ab103: { profile: "keap:pat" } } },
      store,
      profiles: keapProfiles,
    });
    const d = await reg.limiter("ab103").take({ tenant: "ab103", token: "pat-1" });
    expect(d.allowed).toBe(true);
  });

  it("a malformed profile is a ConfigError naming it", async () => {
    const issues = await issuesOf(() =>
      createTenantRegistry({
        config: { tenants: {} },
        store: memoryStore(),
        profiles: { a: { policies: windowOf("0s"), partitonBy: "tenant" }, b: 5 } as never,
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "profiles.a.partitonBy",
      "profiles.a.policies[0].window",
      "profiles.b",
    ]);
  });
});
