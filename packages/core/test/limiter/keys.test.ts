import { createLimiter, type Key, type Policy, SluiceError } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucket, clockedStore, failingStore, fixed } from "./helpers.js";

const spike: Policy = { ...bucket(2, "spike"), scope: ["token"] };
const quota: Policy = { ...fixed(3, "quota"), scope: ["tenant"] };

describe("keys", () => {
  it("treats a string key and { id } as the same key", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    await limiter.take("u1", { cost: 2 });
    await limiter.take({ id: "u1" }, { cost: 1 });
    expect((await limiter.peek("u1")).remaining).toBe(2);
    expect((await limiter.peek({ id: "u1" })).remaining).toBe(2);
  });

  it("keys by every field, in any order, without scope", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    await limiter.take({ tenant: "t", user: "u" }, { cost: 2 });
    expect((await limiter.peek({ user: "u", tenant: "t" })).remaining).toBe(3);
    expect((await limiter.peek({ tenant: "t", user: "v" })).remaining).toBe(5);
    expect((await limiter.peek({ tenant: "t" })).remaining).toBe(5);
    expect((await limiter.peek({ user: "u" })).remaining).toBe(5);
    expect((await limiter.peek("u")).remaining).toBe(5);
  });

  it("keys a scoped policy by its scope fields only", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [spike, quota] });
    await limiter.take({ tenant: "ab103", token: "pat-1" }, { cost: 2 });
    // Another token of the same tenant: its own spike bucket, the tenant's shared quota.
    const d = await limiter.take({ tenant: "ab103", token: "pat-2" });
    expect(d.policies.map((p) => p.remaining)).toEqual([1, 0]);
    // The quota is exhausted for the tenant whatever the token.
    expect((await limiter.take({ tenant: "ab103", token: "pat-3" })).blockedBy).toEqual(["quota"]);
    expect((await limiter.take({ tenant: "other", token: "pat-4" })).allowed).toBe(true);
  });

  it("rejects a key lacking a field a scope names, before calling the store", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [spike, quota] });
    await expect(limiter.take({ tenant: "ab103" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(limiter.take("ab103")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(requests).toHaveLength(0);
  });

  const malformed: [string, unknown][] = [
    ["an empty string", ""],
    ["an empty object", {}],
    ["a non-string field value", { id: 1 }],
    ["a non-string value of another field", { a: 1 }],
    ["an empty field value", { id: "" }],
    ["an empty value of another field", { a: "" }],
    ["null", null],
    ["undefined", undefined],
    ["a number", 42],
    ["an array", ["a"]],
  ];
  it.each(malformed)("rejects %s as INVALID_ARGUMENT before any store call", async (_, key) => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5)] });
    const k = key as Key;
    const calls = [
      () => limiter.take(k),
      () => limiter.peek(k),
      () => limiter.wait(k),
      () => limiter.tryAcquire(k),
      () => limiter.acquire(k),
      () => limiter.run(k, () => 1),
      () => limiter.refund(k),
      () => limiter.reconcile(k, { policy: "burst", remaining: 0 }),
      () => limiter.reset(k),
    ];
    for (const call of calls) {
      const e = await call().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SluiceError);
      expect(e).toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect(requests).toHaveLength(0);
  });

  it("escapes NUL and lone surrogates so every store can hold the key, keeping keys distinct", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1, "burst", "1h")] });
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
        const limiter = createLimiter({
          store: memoryStore(),
          policies: [bucket(1, "burst", "1h")],
        });
        await limiter.take(k1 as never);
        expect((await limiter.take(k2 as never)).allowed).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps distinct keys with special and Unicode characters apart", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1)] });
    const keys: Key[] = [
      "a",
      "a:b",
      "a%3Ab",
      "a%253Ab",
      "a,b",
      "a=b",
      "{a}",
      "{a",
      "a}",
      "sluice:{a}:burst",
      "a\0",
      "a\u0000b",
      "\uD800",
      "\uDC00",
      "%D800",
      "😀",
      "\uD83D",
      "é",
      "e\u0301",
      "Ω",
      "ⓐ",
      " a",
      "a ",
      { id: "b" },
      { id: "a", x: "1" },
      { id: "a,x=1" },
      { "id=a,x": "1" },
      { a: "b,c=d" },
      { a: "b", c: "d" },
      { a: "b:c" },
      { "a:b": "c" },
      { tenant: "x", token: "y" },
      { tenant: "x,token=y" },
    ];
    // Each key gets its own one-token bucket: if two collided, the second take would be refused.
    for (const key of keys) {
      expect((await limiter.take(key)).allowed, JSON.stringify(key)).toBe(true);
    }
    for (const key of keys) {
      expect((await limiter.take(key)).allowed, JSON.stringify(key)).toBe(false);
    }
  });

  it("keeps state apart between prefixes on one store", async () => {
    const { store } = clockedStore();
    const a = createLimiter({ store, policies: [bucket(1)], prefix: "app-a" });
    const b = createLimiter({ store, policies: [bucket(1)], prefix: "app-b" });
    await a.take("k");
    expect((await b.take("k")).allowed).toBe(true);
    expect((await a.take("k")).allowed).toBe(false);
  });
});

describe("partitionBy", () => {
  it("rejects an object key lacking the partition field as INVALID_ARGUMENT", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [spike, quota], partitionBy: "tenant" });
    await expect(limiter.take({ token: "pat-1" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(requests).toHaveLength(0);
  });

  it("qualifies every policy's state by the partition value", async () => {
    const { store, requests } = clockedStore();
    const policies = [bucket(1, "app")];
    const limiter = createLimiter({ store, policies, partitionBy: "tenant" });
    await limiter.take({ tenant: "t1", app: "x" });
    expect((await limiter.take({ tenant: "t2", app: "x" })).allowed).toBe(true);
    expect((await limiter.take({ tenant: "t1", app: "x" })).allowed).toBe(false);
    const last = requests.at(-1);
    expect(last?.keys.every((k) => k.includes(`{${last.partition}}`))).toBe(true);
  });

  it("names the missing partition field or scope field in the error", async () => {
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

  it("counts a tenant-scoped quota across tokens and a token-scoped spike per token", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({
      store,
      partitionBy: "tenant",
      policies: [
        { ...bucket(1, "spike", "1h"), scope: ["token"] },
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

  it("treats a string key as its own partition", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(1)], partitionBy: "tenant" });
    expect((await limiter.take("solo")).allowed).toBe(true);
    expect((await limiter.take("solo")).allowed).toBe(false);
    expect((await limiter.take("other")).allowed).toBe(true);
  });

  it("is required by a co-locating store for keys with several fields (CONFIG_INVALID)", async () => {
    const flaky = failingStore("ok", { capabilities: { requiresPartition: true } });
    const limiter = createLimiter({ store: flaky.store, policies: [spike, quota] });
    await expect(limiter.take({ tenant: "ab103", token: "pat-1" })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    expect(flaky.calls).toBe(0);
    // A single-field key is its own partition.
    const single = createLimiter({ store: flaky.store, policies: [bucket(1)] });
    expect((await single.take({ user: "u" })).allowed).toBe(true);
    // A string key is its own partition too.
    expect((await single.take("plain")).allowed).toBe(true);
    // With partitionBy the same multi-field key is accepted.
    const partitioned = createLimiter({
      store: flaky.store,
      policies: [spike, quota],
      partitionBy: "tenant",
    });
    expect((await partitioned.take({ tenant: "ab103", token: "pat-1" })).allowed).toBe(true);
  });
});
