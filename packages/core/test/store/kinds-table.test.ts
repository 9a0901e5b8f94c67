import { readdirSync, readFileSync } from "node:fs";
import type { PolicyKind } from "@sluice/core";
import {
  compilePolicies,
  evaluate,
  KIND_LIST,
  KINDS,
  kindOfCode,
  OP_CODES,
  opCode,
  paramValues,
  type StoreRequest,
} from "@sluice/core/store";
import { describe, expect, it } from "vitest";

const policies = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 2, every: "7s" } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: 9 } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: "20s" },
  { kind: "fixedWindow", name: "fu", limit: 3, window: 15, align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 5, window: 24, precision: 5 },
  { kind: "concurrency", name: "conc", limit: 2, leaseTtl: "25s" },
]);

const request = (op: StoreRequest["op"], extra: Partial<StoreRequest> = {}): StoreRequest => ({
  op,
  policies,
  keys: policies.map((p) => `k:${p.name}`),
  partition: "k",
  cost: 1,
  acquire: true,
  leaseId: "lease",
  leaseTtlMs: undefined,
  observations: undefined,
  learnedLimitTtlMs: 1_000,
  windowBounds: undefined,
  ...extra,
});

describe("the table of kinds", () => {
  it("keeps the wire codes the Lua script and the SQL function use", () => {
    const codes = Object.fromEntries(KIND_LIST.map((k) => [k.kind, k.code]));
    expect(codes).toEqual({
      tokenBucket: 1,
      pool: 2,
      fixedWindow: 3,
      slidingWindow: 4,
      concurrency: 5,
    });
    for (const k of KIND_LIST) expect(kindOfCode(k.code)).toBe(k);
    expect(kindOfCode(0)).toBeUndefined();
  });

  it("lists each kind's parameters in wire order and reads them off a compiled policy", () => {
    const names = (kind: PolicyKind) => KINDS[kind].params.map((p) => p.name);
    expect(names("tokenBucket")).toEqual(["capacity", "refillTokens", "refillEveryMs"]);
    expect(names("pool")).toEqual(["capacity", "refillTokens", "refillEveryMs"]);
    expect(names("fixedWindow")).toEqual(["limit", "windowMs", "firstUse"]);
    expect(names("slidingWindow")).toEqual(["limit", "windowMs", "precisionMs"]);
    expect(names("concurrency")).toEqual(["limit", "leaseTtlMs"]);
    expect(policies.map(paramValues)).toEqual([
      [5, 2, 7_000],
      [4, 1, 9],
      [6, 20_000, 0],
      [3, 15, 1],
      [5, 24, 5],
      [2, 25_000],
    ]);
    for (const p of policies) expect(paramValues(p)).toHaveLength(KINDS[p.kind].params.length);
  });

  it("names exactly the fields of the reference state, in storage order", () => {
    const { states } = evaluate(request("take"), [], 1_000_000);
    const order = (kind: PolicyKind) => KINDS[kind].state.map((f) => f.name);
    expect(order("tokenBucket")).toEqual([
      "consumed",
      "consumedAtMs",
      "everyMs",
      "learnedLimit",
      "learnedLimitUntilMs",
    ]);
    expect(order("pool")).toEqual([
      "consumed",
      "anchorMs",
      "everyMs",
      "learnedLimit",
      "learnedLimitUntilMs",
    ]);
    expect(order("fixedWindow")).toEqual([
      "count",
      "startMs",
      "endMs",
      "learnedLimit",
      "learnedLimitUntilMs",
    ]);
    expect(order("slidingWindow")).toEqual([
      "learnedLimit",
      "learnedLimitUntilMs",
      "slots",
      "counts",
    ]);
    expect(order("concurrency")).toEqual(["learnedLimit", "learnedLimitUntilMs", "leases"]);
    policies.forEach((p, i) => {
      const state = states[i];
      expect(state, p.name).toBeDefined();
      expect(Object.keys(state!).sort(), p.name).toEqual([...order(p.kind), "dueMs"].sort());
    });
  });

  it("names every field in words with its unit, never in letters", () => {
    for (const k of KIND_LIST) {
      for (const f of [...k.params, ...k.state.filter((s) => s.shape === "scalar")]) {
        expect(f.name).toMatch(/^[a-z][a-zA-Z]{3,}$/);
        expect(f.description.length).toBeGreaterThan(8);
        if (f.unit === "ms" || f.unit === "epochMs") expect(f.name).toMatch(/Ms$/);
      }
      for (const f of k.state.filter((s) => s.shape !== "scalar")) {
        expect(f.name).toMatch(/^[a-z]+s$/); // lists and maps are plural: slots, counts, leases
      }
    }
  });

  it("has one letter per store operation", () => {
    const letters = Object.values(OP_CODES);
    expect(new Set(letters).size).toBe(letters.length);
    expect(OP_CODES).toEqual({
      take: "t",
      takeAndAcquire: "a",
      peek: "p",
      refund: "f",
      reconcile: "c",
      release: "l",
      renew: "r",
      reset: "x",
    });
    expect(opCode({ op: "take", acquire: true })).toBe("a");
    expect(opCode({ op: "take", acquire: false })).toBe("t");
    expect(opCode({ op: "renew", acquire: false })).toBe("r");
  });

  it("keeps the math of the kinds apart from the wire format", () => {
    const dir = new URL("../../src/kinds/", import.meta.url);
    for (const file of readdirSync(dir)) {
      const text = readFileSync(new URL(file, dir), "utf8");
      expect(text, file).not.toMatch(/from "\.\.\/store/);
    }
  });
});
