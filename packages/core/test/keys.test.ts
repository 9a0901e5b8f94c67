import type { Key, SluiceError } from "@sluice/core";
import { compilePolicies, escapeKeyPart, KeyPlan } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileConfig } from "../src/limiter/config.js";
import { readOptions } from "../src/limiter/options.js";
import { failingStore } from "./limiter/helpers.js";

const policies = compilePolicies([
  { kind: "fixedWindow", name: "a:{b}", limit: 1, window: "1s" },
  { kind: "tokenBucket", name: "bucket", capacity: 1, refill: { tokens: 1, every: "1s" } },
]);

// Text rich in the characters that structure a state key, plus escapes and astral Unicode.
const part = fc.string({
  unit: fc.oneof(
    fc.constantFrom(":", "{", "}", "=", ",", "%", "%3A", "%7B", "a", "id"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
  minLength: 1,
  maxLength: 6,
});
const keyArb: fc.Arbitrary<Key> = fc.oneof(
  part,
  fc.dictionary(part, part, { minKeys: 1, maxKeys: 3 }),
);

/** A string key means `{ id: k }`: compare keys by their field set. */
const canonical = (k: Key) =>
  JSON.stringify(
    Object.entries(typeof k === "string" ? { id: k } : k).sort(([a], [b]) => (a < b ? -1 : 1)),
  );

describe("state keys", () => {
  it("never maps two distinct keys to the same state key", () => {
    const plan = new KeyPlan("sl:{x}", policies, undefined, false);
    fc.assert(
      fc.property(keyArb, keyArb, (a, b) => {
        fc.pre(canonical(a) !== canonical(b));
        const ka = plan.resolve(a).keys;
        const kb = plan.resolve(b).keys;
        for (const x of ka) expect(kb).not.toContain(x);
      }),
      { numRuns: 2000 },
    );
  });

  it("never maps two distinct keys to the same state key within partitions", () => {
    const plan = new KeyPlan("sl", policies, "tenant", true);
    const partitioned: fc.Arbitrary<Key> = fc.oneof(
      part,
      fc
        .tuple(part, fc.dictionary(part, part, { maxKeys: 2 }))
        .map(([tenant, rest]) => ({ ...rest, tenant })),
    );
    fc.assert(
      fc.property(partitioned, partitioned, (a, b) => {
        const ka = plan.resolve(a).keys;
        const kb = plan.resolve(b).keys;
        if (canonical(a) === canonical(b)) expect(ka).toEqual(kb);
        else for (const x of ka) expect(kb).not.toContain(x);
      }),
      { numRuns: 2000 },
    );
  });

  it("maps a string key and the object { id } to the same state", () => {
    const plan = new KeyPlan("sl", policies, undefined, false);
    fc.assert(
      fc.property(part, (k) => {
        expect(plan.resolve(k)).toEqual(plan.resolve({ id: k }));
      }),
    );
  });

  it("always uses the escaped partition as the one hash tag", () => {
    const plan = new KeyPlan("p{re}", policies, "tenant", true);
    fc.assert(
      fc.property(part, part, (tenant, user) => {
        const resolved = plan.resolve({ tenant, user });
        expect(resolved.partition).toBe(escapeKeyPart(tenant));
        for (const key of resolved.keys) {
          // Redis Cluster hashes the text between the first `{` and the next `}`.
          const open = key.indexOf("{");
          const close = key.indexOf("}", open + 1);
          expect(key.slice(open + 1, close)).toBe(resolved.partition);
          expect(key.split("{")).toHaveLength(2);
          expect(key.split("}")).toHaveLength(2);
        }
      }),
    );
  });

  it("counts a scoped policy by its scope fields only", () => {
    const scoped = compilePolicies([
      { kind: "fixedWindow", name: "daily", limit: 1, window: "1d", scope: ["tenant"] },
      { kind: "fixedWindow", name: "spike", limit: 1, window: "1s", scope: ["token"] },
    ]);
    const plan = new KeyPlan("sl", scoped, "tenant", true);
    const a = plan.resolve({ tenant: "ab103", token: "pat-1" });
    const b = plan.resolve({ tenant: "ab103", token: "pat-2" });
    expect(a.keys[0]).toBe(b.keys[0]);
    expect(a.keys[1]).not.toBe(b.keys[1]);
    expect(a.keys[0]).toBe("sl:{ab103}:daily:tenant=ab103");
  });

  it.each<[string, unknown]>([
    ["an empty string", ""],
    ["an empty object", {}],
    ["a non-string field", { id: 5 }],
    ["an empty field value", { id: "" }],
    ["null", null],
    ["an array", ["a"]],
  ])("refuses %s as a key with INVALID_ARGUMENT", (_label, key) => {
    const plan = new KeyPlan("sl", policies, undefined, false);
    expect(() => plan.resolve(key)).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }) as SluiceError,
    );
  });

  it("refuses an object key lacking a scoped field or the partition field", () => {
    const scoped = compilePolicies([
      { kind: "fixedWindow", name: "daily", limit: 1, window: "1d", scope: ["tenant"] },
    ]);
    expect(() => new KeyPlan("sl", scoped, undefined, false).resolve({ token: "t" })).toThrow(
      /tenant/,
    );
    expect(() => new KeyPlan("sl", scoped, "app", false).resolve({ tenant: "t" })).toThrow(
      /partition field "app"/,
    );
  });

  it("refuses multi-field keys without partitionBy when the store requires a partition", () => {
    const plan = new KeyPlan("sl", policies, undefined, true);
    expect(() => plan.resolve({ a: "1", b: "2" })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }) as SluiceError,
    );
    expect(plan.resolve("single:{x}").partition).toBe("single%3A%7Bx%7D");
  });
});

describe("the cache of resolved keys", () => {
  const one = compilePolicies([{ kind: "fixedWindow", name: "m", limit: 1, window: "1m" }]);
  /** A seeded generator of key indexes below `n` (the same sequence on every run). */
  const indexes = (n: number, seed = 1) => {
    let x = seed;
    return () => {
      x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
      return x % n;
    };
  };
  /** Key indexes 0, 1, ..., n - 1, then from 0 again. */
  const inTurn = (n: number) => {
    let k = -1;
    return () => (k = k === n - 1 ? 0 : k + 1);
  };
  /**
   * Resolves `lookups` keys drawn from `next` (at random below `n` unless given), then `probes`
   * more, and returns the share of the probes that returned the very object resolved before (a
   * cache hit).
   */
  const hitShare = (
    plan: KeyPlan,
    n: number,
    lookups: number,
    probes = 20_000,
    next = indexes(n),
  ) => {
    const seen = new Map<number, unknown>();
    for (let i = 0; i < lookups; i++) {
      const k = next();
      seen.set(k, plan.resolve(`user-${k}`));
    }
    let hits = 0;
    for (let i = 0; i < probes; i++) {
      const k = next();
      const r = plan.resolve(`user-${k}`);
      if (seen.get(k) === r) hits++;
      seen.set(k, r);
    }
    return hits / probes;
  };

  it("grows for an in-process store whose keys in use outnumber a generation", () => {
    // 50,000 keys in use: more than the 32,768 two generations of 16,384 hold.
    expect(
      hitShare(new KeyPlan("sl", one, undefined, false, true), 50_000, 600_000),
    ).toBeGreaterThan(0.99);
    expect(hitShare(new KeyPlan("sl", one, undefined, false), 50_000, 600_000)).toBeLessThan(0.8);
  });

  it("grows for keys taken in turn, which come back only after both generations let them go", () => {
    // 50,000 keys, each taken again only after the 49,999 others: never in the previous
    // generation when it comes back, so only the fingerprints of the keys let go show it. Five
    // passes, then a sixth probed.
    const passes = (plan: KeyPlan) => hitShare(plan, 50_000, 250_000, 50_000, inTurn(50_000));
    expect(passes(new KeyPlan("sl", one, undefined, false, true))).toBeGreaterThan(0.99);
    expect(passes(new KeyPlan("sl", one, undefined, false))).toBe(0);
  });

  it("stays bounded: keys seen once never make it grow, and it grows only so far", () => {
    const plan = new KeyPlan("sl", one, undefined, false, true);
    const early = plan.resolve("once-0");
    for (let i = 1; i < 200_000; i++) plan.resolve(`once-${i}`);
    expect(plan.resolve("once-0")).not.toBe(early);
    const kept = plan.resolve("once-199999");
    expect(plan.resolve("once-199999")).toBe(kept);
    // Grown by keys that come back, then shrunk back by keys seen once each.
    const grown = new KeyPlan("sl", one, undefined, false, true);
    expect(hitShare(grown, 50_000, 600_000)).toBeGreaterThan(0.99);
    for (let i = 0; i < 400_000; i++) grown.resolve(`once-${i}`);
    const older = grown.resolve("once-360000");
    for (let i = 400_000; i < 440_000; i++) grown.resolve(`once-${i}`);
    expect(grown.resolve("once-360000")).not.toBe(older);
    // 200,000 keys in use at random: at most two generations of 131,072 stay cached (all of
    // them would, one generation of 262,144 grown).
    const capped = new KeyPlan("sl", one, undefined, false, true);
    expect(hitShare(capped, 200_000, 2_000_000)).toBeLessThan(0.95);
  });

  it("grows for an in-process store with the fast path, not for a remote one", () => {
    const policies = [{ kind: "fixedWindow" as const, name: "m", limit: 1, window: "1m" }];
    const planOf = (store: Parameters<typeof readOptions>[0]["store"]) => {
      const settings = readOptions({ store, policies });
      return compileConfig(settings.policies, settings).plan;
    };
    expect(hitShare(planOf(memoryStore()), 50_000, 600_000)).toBeGreaterThan(0.99);
    expect(hitShare(planOf(failingStore("ok").store), 50_000, 600_000)).toBeLessThan(0.8);
  });

  it("caches object keys by their fields, telling every list of fields apart", () => {
    const plan = new KeyPlan("sl", one, "tenant", true);
    const first = plan.resolve({ tenant: "acme", user: "u1" });
    expect(plan.resolve({ tenant: "acme", user: "u1" })).toBe(first);
    expect(plan.resolve({ user: "u1", tenant: "acme" })).toEqual(first);
    // Names and values that run together the same way are still different keys.
    const a = new KeyPlan("sl", one, undefined, false);
    const ab = a.resolve({ ab: "c" }).keys[0];
    expect(a.resolve({ a: "bc" }).keys[0]).not.toBe(ab);
    expect(a.resolve({ a: "b", c: "d" }).keys[0]).not.toBe(a.resolve({ a: "b:c", d: "x" }).keys[0]);
    // A getter that answers otherwise the second time: the key is resolved from one reading of
    // its fields, and the cache keeps nothing that another key could be taken for.
    let reads = 0;
    const shifty = {
      get id() {
        reads++;
        return reads === 1 ? "first" : "second";
      },
    };
    expect(a.resolve(shifty).partition).toBe("second");
    expect(a.resolve({ id: "first" }).partition).toBe("first");
    expect(a.resolve({ id: "second" }).partition).toBe("second");
  });
});
