import { ConfigError, createLimiter, type Policy, SluiceError } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clockedStore } from "../limiter/helpers.js";

const bucket = (capacity: number, every = "1s"): Policy => ({
  kind: "tokenBucket",
  name: "bucket",
  capacity,
  refill: { tokens: 1, every },
});

describe("take and peek", () => {
  it("admits until the bucket is empty, then refuses with the wait until the next token", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(2)] });
    expect((await limiter.take("k")).remaining).toBe(1);
    expect((await limiter.take("k")).remaining).toBe(0);
    const refused = await limiter.take("k");
    expect(refused).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterMs: 1000,
      blockedBy: ["bucket"],
    });
  });

  it("refills continuously, never above capacity", async () => {
    const clock = clockedStore();
    const limiter = createLimiter({ store: clock.store, policies: [bucket(3)] });
    await limiter.take("k", { cost: 3 });
    clock.advance(1500);
    expect((await limiter.peek("k")).remaining).toBe(1);
    clock.advance(60_000);
    expect((await limiter.peek("k")).remaining).toBe(3);
  });

  it("charges no policy when one of them refuses", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "hourly", limit: 10, window: "1h" }, bucket(2, "1h")],
    });
    for (let i = 0; i < 5; i++) await limiter.take("k");
    const peek = await limiter.peek("k");
    expect(peek.policies.map((p) => [p.name, p.remaining])).toEqual([
      ["hourly", 8],
      ["bucket", 0],
    ]);
  });

  it("refuses a cost above a limit with retryAfterMs Infinity and charges nothing", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const d = await limiter.take("k", { cost: 6 });
    expect(d).toMatchObject({
      allowed: false,
      retryAfterMs: Number.POSITIVE_INFINITY,
      blockedBy: ["bucket"],
    });
    expect((await limiter.peek("k")).remaining).toBe(5);
  });

  it("reports the least remaining over the policies it charges", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [bucket(5), { kind: "fixedWindow", name: "daily", limit: 3, window: "1d" }],
    });
    expect((await limiter.take("k")).remaining).toBe(2);
  });

  it("reports Infinity remaining when only concurrency policies exist", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [{ kind: "concurrency", name: "c", limit: 2, leaseTtl: "1m" }],
    });
    const d = await limiter.take("k");
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(Number.POSITIVE_INFINITY);
    expect(d.policies[0]).toMatchObject({ name: "c", kind: "concurrency", remaining: 2, limit: 2 });
  });

  it("peeks without charging and says whether a take of one would pass", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1)] });
    expect(await limiter.peek("k")).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limiter.peek("k")).toMatchObject({ allowed: true, remaining: 1 });
    await limiter.take("k");
    expect(await limiter.peek("k")).toMatchObject({
      allowed: false,
      remaining: 0,
      blockedBy: ["bucket"],
    });
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "2"])(
    "rejects cost %s with INVALID_ARGUMENT before any store call",
    async (cost) => {
      const { store, requests } = clockedStore();
      const limiter = createLimiter({ store, policies: [bucket(5)] });
      await expect(limiter.take("k", { cost: cost as number })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringContaining("cost"),
      });
      expect(requests).toHaveLength(0);
    },
  );

  it.each<[unknown, string]>([
    ["", "empty string"],
    [{}, "empty object"],
    [{ a: 1 }, "non-string value"],
    [null, "null"],
    [["x"], "array"],
    [{ a: "" }, "empty field"],
  ])("rejects the malformed key %j (%s) before any store call", async (key: unknown) => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    await expect(limiter.take(key as never)).rejects.toBeInstanceOf(SluiceError);
    await expect(limiter.take(key as never)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(requests).toHaveLength(0);
  });
});

describe("keys", () => {
  it("treats a string key as { id: key }", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(3, "1h")] });
    await limiter.take("acme");
    expect((await limiter.take({ id: "acme" })).remaining).toBe(1);
  });

  it("counts a tenant-scoped quota across tokens and a token-scoped spike per token", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      partitionBy: "tenant",
      policies: [
        {
          kind: "tokenBucket",
          name: "spike",
          scope: ["token"],
          capacity: 1,
          refill: { tokens: 1, every: "1h" },
        },
        { kind: "fixedWindow", name: "quota", scope: ["tenant"], limit: 3, window: "1d" },
      ],
    });
    expect((await limiter.take({ tenant: "t1", token: "a" })).allowed).toBe(true);
    expect((await limiter.take({ tenant: "t1", token: "a" })).blockedBy).toEqual(["spike"]);
    const d = await limiter.take({ tenant: "t1", token: "b" });
    expect(d.allowed).toBe(true);
    expect(d.policies[1]!.remaining).toBe(1);
    expect((await limiter.take({ tenant: "t2", token: "a" })).policies[1]!.remaining).toBe(2);
  });

  it("refuses an object key that lacks the partitionBy field or a scoped field", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      partitionBy: "tenant",
      policies: [{ kind: "fixedWindow", name: "q", scope: ["user"], limit: 3, window: "1d" }],
    });
    await expect(limiter.take({ user: "u" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("tenant"),
    });
    await expect(limiter.take({ tenant: "t" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("user"),
    });
  });

  it("refuses multi-field keys without partitionBy on a store that co-locates a decision", async () => {
    const inner = memoryStore();
    const store = {
      capabilities: { ...inner.capabilities, requiresPartition: true },
      execute: inner.execute.bind(inner),
    };
    const limiter = createLimiter({ store, policies: [bucket(3)] });
    await expect(limiter.take({ tenant: "t", user: "u" })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    expect((await limiter.take({ tenant: "t" })).allowed).toBe(true);
    expect((await limiter.take("plain")).allowed).toBe(true);
  });

  it("escapes NUL and lone surrogates so every store can hold the key, keeping keys distinct", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1, "1h")] });
    for (const k of ["a\0b", "a\uD800b", "a\uDC00b", "a%00b", "a\uD83D\uDE00b"]) {
      expect((await limiter.take(k)).allowed).toBe(true);
    }
    const keys = requests.map((r) => r.keys[0]!);
    expect(new Set(keys).size).toBe(5);
    for (const k of keys) expect(k).not.toMatch(/\0|\p{Cs}/u);
    expect(keys[4]).toContain("\uD83D\uDE00"); // a valid pair is kept as is
  });

  it("never lets two distinct keys share state", async () => {
    const text = fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }).map((s) => s || "x");
    const special = fc.constantFrom("a", ":", "{", "}", "=", ",", "%", "%3A", "a:b", "{x}", "ü");
    const part = fc.oneof(
      text,
      special,
      fc.tuple(special, special).map(([a, b]) => a + b),
    );
    const keyArb = fc.oneof(
      part,
      fc.dictionary(fc.constantFrom("id", "a", "b", "a:b", "{"), part, { minKeys: 1, maxKeys: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(keyArb, keyArb, async (k1, k2) => {
        const norm = (k: unknown) => (typeof k === "string" ? { id: k } : k);
        fc.pre(
          JSON.stringify(Object.entries(norm(k1) as object).sort()) !==
            JSON.stringify(Object.entries(norm(k2) as object).sort()),
        );
        const limiter = createLimiter({ store: memoryStore(), policies: [bucket(1, "1h")] });
        await limiter.take(k1 as never);
        expect((await limiter.take(k2 as never)).allowed).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe("refund, reset and reconcile", () => {
  it("gives back a charge but never above full", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [bucket(3, "1h"), { kind: "fixedWindow", name: "w", limit: 5, window: "1h" }],
    });
    await limiter.take("k", { cost: 2 });
    await limiter.refund("k", { cost: 5 });
    const peek = await limiter.peek("k");
    expect(peek.policies.map((p) => p.remaining)).toEqual([3, 5]);
  });

  it("forgets all state of a key on reset", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1, "1h")] });
    await limiter.take("k");
    await limiter.reset("k");
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("lowers remaining to what the server reports and never raises it", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "quota", limit: 100, window: "1d" }],
    });
    await limiter.reconcile("k", [{ policy: "quota", remaining: 40 }]);
    expect((await limiter.peek("k")).remaining).toBe(40);
    await limiter.reconcile("k", [{ policy: "quota", remaining: 90 }]);
    expect((await limiter.peek("k")).remaining).toBe(40);
  });

  it("replaces the configured limit with a learned one, shared through the store, until it lapses", async () => {
    const clock = clockedStore();
    const policies: Policy[] = [{ kind: "fixedWindow", name: "quota", limit: 10, window: "1d" }];
    const a = createLimiter({ store: clock.store, policies, learnedLimitTtlMs: 60_000 });
    const b = createLimiter({ store: clock.store, policies, learnedLimitTtlMs: 60_000 });
    await a.reconcile("k", { policy: "quota", limit: 25 });
    expect((await b.take("k")).policies[0]).toMatchObject({ limit: 25, remaining: 24 });
    clock.advance(61_000);
    expect((await b.peek("k")).policies[0]).toMatchObject({ limit: 10, remaining: 9 });
  });

  it("ends the current fixed window at the server's reset time", async () => {
    const clock = clockedStore(Date.UTC(2026, 0, 5, 12));
    const limiter = createLimiter({
      store: clock.store,
      policies: [{ kind: "fixedWindow", name: "quota", limit: 5, window: "1d" }],
    });
    const serverReset = Date.UTC(2026, 0, 5, 12, 30);
    await limiter.reconcile("k", { policy: "quota", remaining: 0, resetAtMs: serverReset });
    const refused = await limiter.take("k");
    expect(refused.allowed).toBe(false);
    expect(refused.policies[0]!.resetAtMs).toBe(serverReset);
    clock.advance(30 * 60_000);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("ignores an observation for a policy it does not have, with an event", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(3)] });
    const ignored: string[] = [];
    limiter.on("observationIgnored", (e) => ignored.push(e.observation.policy));
    await limiter.reconcile("k", [{ policy: "nope", remaining: 0 }]);
    expect(ignored).toEqual(["nope"]);
    expect(requests).toHaveLength(0);
    expect((await limiter.peek("k")).remaining).toBe(3);
  });

  it.each([{ remaining: -1 }, { limit: 0 }, { resetAtMs: Number.NaN }, { remaining: "3" }])(
    "refuses the malformed observation %j",
    async (bad) => {
      const { store } = clockedStore();
      const limiter = createLimiter({ store, policies: [bucket(3)] });
      await expect(
        limiter.reconcile("k", [{ policy: "bucket", ...(bad as object) }]),
      ).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    },
  );
});

describe("configuration", () => {
  it("lists every problem with paths starting at policies[i]", () => {
    let error: unknown;
    try {
      createLimiter({
        store: memoryStore(),
        timeoutMs: -1,
        onStoreError: "explode" as never,
        policies: [
          bucket(5),
          {
            kind: "tokenBucket",
            name: "b2",
            capacity: 5,
            refill: { tokens: 1, every: "soon" },
          } as never,
          { kind: "fixedWindow", name: "bucket", limit: 1, window: "1h" },
          { kind: "fixedWindow", name: "tz", limit: 1, window: "1d", timeZone: "Mars/Olympus" },
          { kind: "pool", name: "p", capacty: 3 } as never,
        ],
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "timeoutMs",
        "onStoreError",
        "policies[1].refill.every",
        "policies[2].name",
        "policies[3].timeZone",
        "policies[4].capacty",
        "policies[4].capacity",
        "policies[4].refill",
      ]),
    );
    const typo = (error as ConfigError).issues.find((i) => i.path === "policies[4].capacty");
    expect(typo?.message).toContain('did you mean "capacity"');
  });

  it("keeps consumption when a policy keeps its name and its limit is raised", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "q", limit: 5, window: "1h" }],
    });
    await limiter.take("k", { cost: 3 });
    limiter.updatePolicies([{ kind: "fixedWindow", name: "q", limit: 10, window: "1h" }]);
    expect((await limiter.peek("k")).remaining).toBe(7);
  });
});

describe("calendar windows in a time zone", () => {
  it("follows the store's clock, not a client clock months off", async () => {
    // The store says 2026-03-08 while this process's clock says otherwise: after the first
    // answer the limiter sends the days around the store's time.
    const clock = clockedStore(Date.UTC(2026, 2, 8, 12));
    const limiter = createLimiter({
      store: clock.store,
      policies: [
        {
          kind: "fixedWindow",
          name: "daily",
          limit: 5,
          window: "1d",
          timeZone: "America/New_York",
        },
      ],
    });
    await limiter.peek("k");
    expect((await limiter.take("k")).policies[0]!.resetAtMs).toBe(Date.UTC(2026, 2, 9, 4));
  });

  it("resets a New York daily quota at local midnight, 23 hours after the previous one on 2026-03-08", async () => {
    const clock = clockedStore(Date.UTC(2026, 2, 8, 12));
    const limiter = createLimiter({
      store: clock.store,
      policies: [
        {
          kind: "fixedWindow",
          name: "daily",
          limit: 1,
          window: "1d",
          timeZone: "America/New_York",
        },
      ],
    });
    await limiter.peek("k"); // learns the store's clock (2026-03-08, months from this process's)
    const first = await limiter.take("k");
    // 2026-03-09 00:00 in New York is 04:00 UTC (EDT); the day began at 05:00 UTC (EST).
    expect(first.policies[0]!.resetAtMs).toBe(Date.UTC(2026, 2, 9, 4));
    expect((await limiter.take("k")).retryAfterMs).toBe(Date.UTC(2026, 2, 9, 4) - clock.now());
  });
});
