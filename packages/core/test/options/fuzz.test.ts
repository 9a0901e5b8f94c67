import { createKeapClient } from "@sluice/adapter-keap";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";
import {
  ConfigError,
  createLimiter,
  createTenantRegistry,
  isSluiceError,
  type Limiter,
  type Policy,
  parseRateLimitHeaders,
  parseTenantConfig,
  rateLimitHeaders,
} from "@sluice/core";
import { rateLimit as expressRateLimit } from "@sluice/http/express";
import { rateLimit as fastifyRateLimit } from "@sluice/http/fastify";
import { rateLimit as honoRateLimit } from "@sluice/http/hono";
import { rateLimit as nodeRateLimit } from "@sluice/http/node";
import { memoryStore } from "@sluice/store-memory";
import { postgresStore } from "@sluice/store-postgres";
import { redisStore } from "@sluice/store-redis";
import fc from "fast-check";
import Fastify from "fastify";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";

// Random option objects for every factory and method that takes one (API.md "Options are
// checked"): typos of known names, wrong types, extreme values, nested junk. Whatever comes in,
// the only errors out are SluiceErrors, a refused option is a ConfigError with issues in our own
// words, and a refused registry update changes nothing.

const RUNS = 150;

/** Values of every awkward kind, a few of them valid for some option. */
const junk = fc.constantFrom<unknown>(
  undefined,
  null,
  0,
  -1,
  1,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 53,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  "",
  "x",
  "0s",
  "00ms",
  "1s",
  "1000000000000d",
  "deny",
  "draft-7",
  true,
  false,
  [],
  [1, "a"],
  {},
  { a: 1 },
  { fallback: null },
  { failures: 0, probeMs: "1s" },
  { maxWaitMs: -5, maxWait: 1 },
  () => 1,
  Symbol("s"),
  10n,
  Object.create(null),
);

/** A known name, a typo of one (a letter dropped, doubled, changed, or the case changed), or junk. */
function names(known: readonly string[]): fc.Arbitrary<string> {
  const typo = fc
    .tuple(fc.constantFrom(...known), fc.nat(), fc.constantFrom("drop", "double", "case", "swap"))
    .map(([name, at, how]) => {
      const i = at % name.length;
      if (how === "drop") return name.slice(0, i) + name.slice(i + 1);
      if (how === "double") return name.slice(0, i) + name[i] + name.slice(i);
      if (how === "case")
        return name.toLowerCase() === name ? name.toUpperCase() : name.toLowerCase();
      return `${name.slice(0, i)}x${name.slice(i + 1)}`;
    });
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: typo },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  );
}

/** An options object: a few random names with random values, over `base`. */
function options(known: readonly string[], values: fc.Arbitrary<unknown> = junk) {
  return fc.dictionary(names(known), fc.oneof(values, junk), { maxKeys: 4 }).map((o) => ({ ...o }));
}

/** Either the options object or, now and then, something that is not one. */
function maybeNotObject(arb: fc.Arbitrary<Record<string, unknown>>) {
  return fc.oneof({ weight: 9, arbitrary: arb }, junk);
}

const ZOD_WORDING =
  /Invalid string|must match pattern|Invalid input|expected \w+ to be|Too (small|big)/;

const tally = { ok: 0, config: 0, other: 0 };

/** A thrown value is a SluiceError; a ConfigError lists issues in our own words. */
function checkError(e: unknown, factory: boolean): void {
  if (!isSluiceError(e)) throw new Error(`not a SluiceError: ${String(e)}`, { cause: e });
  if (e.code === "CONFIG_INVALID") {
    expect(e).toBeInstanceOf(ConfigError);
    const { issues } = e as ConfigError;
    expect(issues.length).toBeGreaterThan(0);
    for (const i of issues) {
      expect(typeof i.path).toBe("string");
      expect(i.message).not.toMatch(ZOD_WORDING);
    }
    tally.config++;
  } else {
    // Factories refuse options with a ConfigError only; methods may also say INVALID_ARGUMENT
    // (a per-call cost or signal) or WAIT_TIMEOUT (a cost that can never fit).
    expect(factory).toBe(false);
    expect(["INVALID_ARGUMENT", "WAIT_TIMEOUT"]).toContain(e.code);
    tally.other++;
  }
}

async function expectChecked(fn: () => unknown, factory = true): Promise<unknown> {
  try {
    const out = await fn();
    tally.ok++;
    return out;
  } catch (e) {
    checkError(e, factory);
    return undefined;
  }
}

const policies: Policy[] = [
  { kind: "tokenBucket", name: "burst", capacity: 1_000_000, refill: { tokens: 1, every: "1s" } },
  { kind: "concurrency", name: "slots", limit: 1_000_000, leaseTtl: "1m" },
];

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describe("options fuzz: factories", () => {
  it("createLimiter", async () => {
    const known = [
      "store",
      "policies",
      "prefix",
      "partitionBy",
      "onStoreError",
      "timeoutMs",
      "learnedLimitTtlMs",
      "breaker",
    ];
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(known)), async (o) => {
        const input =
          typeof o === "object" && o !== null ? { store: memoryStore(), policies, ...o } : o;
        await expectChecked(() => createLimiter(input as never));
      }),
      { numRuns: RUNS },
    );
  });

  it("memoryStore", async () => {
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(["clock", "maxKeys"])), async (o) => {
        await expectChecked(() => memoryStore(o as never));
      }),
      { numRuns: RUNS },
    );
  });

  it("redisStore", async () => {
    const client = new Redis({ lazyConnect: true });
    cleanups.push(() => client.disconnect());
    const known = ["client", "prefix", "maxBatch", "specializedScripts"];
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(known)), async (o) => {
        const input = typeof o === "object" && o !== null ? { client, ...o } : o;
        await expectChecked(() => redisStore(input as never));
      }),
      { numRuns: RUNS },
    );
  });

  it("postgresStore", async () => {
    const pool = new pg.Pool({ connectionString: "postgres://127.0.0.1:1/none" });
    cleanups.push(() => pool.end());
    const known = ["pool", "table", "schema", "lanes", "maxBatch", "durable"];
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(known)), async (o) => {
        const input = typeof o === "object" && o !== null ? { pool, ...o } : o;
        const store = await expectChecked(() => postgresStore(input as never));
        await (store as { close?: () => Promise<void> } | undefined)?.close?.();
      }),
      { numRuns: RUNS },
    );
  });

  it("createKeapClient", async () => {
    const known = [
      "profile",
      "store",
      "identity",
      "fetch",
      "maxRetries",
      "maxWaitMs",
      "overrides",
      "timeZone",
      "prefix",
      "spikeMargin",
      "strict",
      "onStoreError",
      "timeoutMs",
      "random",
    ];
    const values = fc.constantFrom<unknown>(
      "pat",
      "keap:oauth",
      "org-daily-2500",
      { tenant: "t", token: "p" },
      { app: "a", tenant: "" },
      { spike: { capacity: 0 } },
      { quota: { limit: 10 } },
      "Europe/London",
    );
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(known, values)), async (o) => {
        const input =
          typeof o === "object" && o !== null
            ? {
                profile: "pat",
                store: memoryStore(),
                identity: { tenant: "t", token: "p" },
                fetch: async () => new Response("ok"),
                ...o,
              }
            : o;
        const client = await expectChecked(() => createKeapClient(input as never));
        (client as { close?: () => void } | undefined)?.close?.();
      }),
      { numRuns: RUNS },
    );
  });

  it("startKeapSimulator", async () => {
    // port and host stay fixed: a port the OS refuses is the environment, not an option error.
    const known = [
      "profile",
      "spikeModel",
      "routing",
      "jitterMs",
      "bodies",
      "limits",
      "quotaUsed",
      "tenantDayUsed",
      "processors",
      "spikeBurst",
      "tenantHeaders",
      "retryAfter",
      "tenant",
      "latencyMs",
      "clock",
      "random",
    ];
    await fc.assert(
      fc.asyncProperty(options(known), async (o) => {
        const sim = await expectChecked(() =>
          startKeapSimulator({ ...o, port: 0, host: "127.0.0.1" } as never),
        );
        await (sim as { close?: () => Promise<void> } | undefined)?.close?.();
      }),
      { numRuns: 60 },
    );
  });

  it("createTenantRegistry and parseTenantConfig", async () => {
    const known = ["config", "store", "profiles", "prefix", "partitionBy", "limiterOptions"];
    const values = fc.constantFrom<unknown>(
      { tenants: { a: { policies } } },
      { custom: policies },
      { custom: { policies, partitionBy: "tenant" } },
      { custom: { policies: [{ kind: "fixedWindow", name: "w", limit: 1, window: "0s" }] } },
      { timeoutMs: 0 },
      { timeout: 5 },
      { breaker: { probeMs: 10 } },
    );
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(known, values)), async (o) => {
        const input =
          typeof o === "object" && o !== null
            ? { config: { tenants: { a: { policies } } }, store: memoryStore(), ...o }
            : o;
        const reg = await expectChecked(() => createTenantRegistry(input as never));
        if (reg !== undefined) {
          const r = reg as ReturnType<typeof createTenantRegistry>;
          // A method: a key without the field a random partitionBy names is INVALID_ARGUMENT.
          for (const id of r.tenants())
            await expectChecked(() => r.limiter(id).take({ tenant: id, id }), false);
          r.close();
        }
        const profiles = (o as { profiles?: unknown } | null)?.profiles;
        await expectChecked(() =>
          parseTenantConfig({ tenants: { a: { profile: "custom" } } }, { profiles } as never),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it("HTTP middleware (express, hono, node), rateLimitHeaders and parseRateLimitHeaders", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies });
    const known = [
      "limiter",
      "key",
      "cost",
      "skip",
      "headers",
      "legacyHeaders",
      "refund",
      "wait",
      "onLimited",
      "onError",
    ];
    const factories = [expressRateLimit, honoRateLimit, nodeRateLimit] as const;
    await fc.assert(
      fc.asyncProperty(
        maybeNotObject(options(known)),
        fc.constantFrom(0, 1, 2),
        options(["standard", "legacy", "nowMs"]),
        maybeNotObject(options(["nowMs", "defaultPolicy"])),
        async (o, which, headerOptions, parseOptions) => {
          const input = typeof o === "object" && o !== null ? { limiter, ...o } : o;
          await expectChecked(() => factories[which]!(input as never));
          const decision = await limiter.peek("k");
          await expectChecked(() => rateLimitHeaders(decision, headerOptions as never));
          const sent = { "ratelimit-limit": "10", "ratelimit-remaining": "3" };
          await expectChecked(() => parseRateLimitHeaders(sent, parseOptions as never));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("HTTP middleware (fastify register)", async () => {
    const limiter = createLimiter({ store: memoryStore(), policies });
    const known = ["limiter", "key", "cost", "headers", "legacyHeaders", "wait", "onLimited"];
    await fc.assert(
      fc.asyncProperty(options(known), async (o) => {
        const app = Fastify();
        try {
          app.register(fastifyRateLimit, { limiter, ...o } as never);
          await expectChecked(() => app.ready());
        } finally {
          await app.close().catch(() => undefined);
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe("options fuzz: limiter methods", () => {
  const limiter: Limiter = createLimiter({ store: memoryStore(), policies });
  const costs = fc.constantFrom<unknown>(0, 1, 2, 2 ** 53, 1_000_001);

  it("take, tryAcquire, refund", async () => {
    await fc.assert(
      fc.asyncProperty(maybeNotObject(options(["cost"], costs)), async (o) => {
        await expectChecked(() => limiter.take("k", o as never), false);
        const got = await expectChecked(() => limiter.tryAcquire("k", o as never), false);
        await (
          got as { lease?: { release(): Promise<void> } | null } | undefined
        )?.lease?.release();
        await expectChecked(() => limiter.refund("k", o as never), false);
      }),
      { numRuns: RUNS },
    );
  });

  it("wait, acquire", async () => {
    const values = fc.constantFrom<unknown>(0, 1, 10, 1_000_001, new AbortController().signal);
    await fc.assert(
      fc.asyncProperty(
        maybeNotObject(options(["cost", "signal", "timeoutMs"], values)),
        async (o) => {
          await expectChecked(() => limiter.wait("k", o as never), false);
          const lease = await expectChecked(() => limiter.acquire("k", o as never), false);
          await (lease as { release?: () => Promise<void> } | undefined)?.release?.();
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("options fuzz: registry.update", () => {
  const window = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom<unknown>("1d", "1h", 60_000) },
    junk,
  );
  const limit = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 50 }) }, junk);
  const tenant = fc.record({ limit, window });
  const file = fc.dictionary(fc.constantFrom("a", "b", "c", "d"), tenant, { minKeys: 1 });
  const toConfig = (t: Record<string, { limit: unknown; window: unknown }>) => ({
    tenants: Object.fromEntries(
      Object.entries(t).map(([id, p]) => [
        id,
        { policies: [{ kind: "fixedWindow", name: "w", limit: p.limit, window: p.window }] },
      ]),
    ),
  });

  it("applies a new configuration entirely or not at all", async () => {
    let partial = 0;
    await fc.assert(
      fc.asyncProperty(file, async (next) => {
        const first = {
          tenants: Object.fromEntries(
            ["a", "b", "c", "d"].map((id) => [
              id,
              { policies: [{ kind: "fixedWindow", name: "w", limit: 5, window: "1d" }] },
            ]),
          ),
        };
        const reg = createTenantRegistry({ config: first, store: memoryStore() });
        const live = ["a", "b", "c", "d"].map((id) => [id, reg.limiter(id)] as const);
        const limits = async () =>
          Promise.all(
            live.map(async ([, l]) =>
              l.closed ? "closed" : (await l.peek("k")).policies[0]!.limit,
            ),
          );
        const before = await limits();
        let applied = true;
        try {
          reg.update(toConfig(next));
        } catch (e) {
          checkError(e, true);
          applied = false;
        }
        const after = await limits();
        if (!applied) {
          if (JSON.stringify(after) !== JSON.stringify(before)) partial++;
          expect(after).toEqual(before);
          expect(reg.tenants()).toEqual(["a", "b", "c", "d"]);
        } else {
          const expected = live.map(([id]) =>
            next[id] === undefined ? "closed" : next[id]!.limit,
          );
          expect(after).toEqual(expected);
        }
        reg.close();
      }),
      { numRuns: 300 },
    );
    expect(partial).toBe(0);
  });

  afterAll(() => {
    // Both outcomes were exercised: some options accepted, some refused.
    expect(tally.ok).toBeGreaterThan(0);
    expect(tally.config).toBeGreaterThan(0);
  });
});
