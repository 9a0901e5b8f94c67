import type { Policy } from "@sluice/core";
import {
  compilePolicies,
  evaluate,
  type PolicyStateRecord,
  type Store,
  type StoreCapabilities,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core/store";
import {
  compareWithReference,
  ReferenceModel,
  RequestFactory,
  type TimeDriver,
} from "@sluice/core/testing";
import { describe, expect, it } from "vitest";

/** A store deciding with the reference math; `distort` may change its answers. */
function referenceStore(
  clock: () => number,
  options: {
    distort?: (request: StoreRequest, result: number[]) => void;
    capabilities?: Partial<StoreCapabilities>;
  } = {},
): Store {
  const entries = new Map<string, PolicyStateRecord>();
  return {
    capabilities: {
      name: "reference",
      clock: "injectable",
      local: true,
      requiresPartition: false,
      ...options.capabilities,
    },
    execute(request): StoreResult {
      const declared = options.capabilities?.kinds;
      for (const p of request.policies) {
        if (declared !== undefined && !declared.includes(p.kind)) {
          throw new Error(`asked for a ${p.kind} policy it does not decide`);
        }
      }
      const e = evaluate(
        request,
        request.keys.map((k) => entries.get(k)),
        clock(),
      );
      if (e.write) {
        request.keys.forEach((k, i) => {
          const s = e.states[i];
          if (s === undefined) entries.delete(k);
          else entries.set(k, s);
        });
      }
      options.distort?.(request, e.result);
      return e.result;
    },
  };
}

function fakeTime(): TimeDriver & { at: number } {
  const t = {
    at: Date.UTC(2026, 2, 1),
    now: () => t.at,
    pass: async (ms: number) => {
      t.at += ms;
    },
  };
  return t;
}

describe("compareWithReference", () => {
  it("passes a store that decides with the reference math", async () => {
    const time = fakeTime();
    await compareWithReference({
      store: referenceStore(time.now),
      time,
      longTime: true,
      numRuns: 40,
    });
  });

  it("finds a store that reports one token too many once a bucket has refilled", async () => {
    const time = fakeTime();
    const store = referenceStore(time.now, {
      distort: (request, result) => {
        request.policies.forEach((p, i) => {
          const o = 4 + 5 * i;
          if (p.kind === "tokenBucket" && result[o + 1]! < result[o]!) result[o + 1]! += 1;
        });
      },
    });
    const failure = await compareWithReference({
      store,
      time,
      numRuns: 100,
      limiters: [
        [{ kind: "tokenBucket", name: "b", capacity: 3, refill: { tokens: 1, every: 20 } }],
      ],
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    // fast-check reports the shrunk counterexample; the harness's own message is its cause.
    expect(failure?.message).toMatch(/Counterexample/);
    expect(String(failure?.cause)).toMatch(/differs from the reference math/);
  });

  it("runs the store's own layouts and only the kinds it declares", async () => {
    const time = fakeTime();
    const own: Policy[] = [
      { kind: "fixedWindow", name: "a", limit: 3, window: 50 },
      { kind: "fixedWindow", name: "b", limit: 9, window: 500, align: "firstUse" },
    ];
    await compareWithReference({
      store: referenceStore(time.now, { capabilities: { kinds: ["fixedWindow"] } }),
      time,
      limiters: [own],
      numRuns: 20,
    });
    await compareWithReference({
      store: referenceStore(time.now, { capabilities: { kinds: ["fixedWindow", "pool"] } }),
      time,
      numRuns: 40,
    });
  });
});

/** Decides the requests of one tick together, in `order`: a store that batches. */
function batchingStore(clock: () => number, order: "issue" | "reversed"): Store {
  const inner = referenceStore(clock);
  let pending: { request: StoreRequest; resolve: (r: StoreResult) => void }[] = [];
  return {
    capabilities: inner.capabilities,
    execute(request) {
      if (pending.length === 0) {
        setImmediate(() => {
          const batch = order === "issue" ? pending : pending.reverse();
          pending = [];
          for (const p of batch) p.resolve(inner.execute(p.request) as StoreResult);
        });
      }
      return new Promise<StoreResult>((resolve) => pending.push({ request, resolve }));
    },
  };
}

describe("compareWithReference, concurrent", () => {
  it("passes a store that decides a batch in issue order", async () => {
    const time = fakeTime();
    await compareWithReference({
      store: batchingStore(time.now, "issue"),
      time,
      concurrent: true,
      numRuns: 60,
    });
  });

  it("finds a store that decides a batch out of order", async () => {
    const time = fakeTime();
    const failure = await compareWithReference({
      store: batchingStore(time.now, "reversed"),
      time,
      concurrent: true,
      limiters: [[{ kind: "fixedWindow", name: "w", limit: 2, window: 1_000 }]],
      numRuns: 100,
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(failure?.cause)).toMatch(/differs from the reference math/);
  });
});

describe("ReferenceModel", () => {
  const policies = compilePolicies([{ kind: "fixedWindow", name: "w", limit: 2, window: "1h" }]);

  it("names both answers and the history when a store differs", () => {
    const time = fakeTime();
    const store = referenceStore(time.now);
    const factory = new RequestFactory(policies, "t", store, time);
    const request = factory.build(factory.plan.resolve("k"), { op: "take", cost: 1 });
    const model = new ReferenceModel();
    const right = new ReferenceModel().expected(request, time.at);
    model.check(request, right, "first");
    const wrong = [...new ReferenceModel().expected(request, time.at)];
    wrong[5] = 2; // the second take's remaining, as if the first had not counted
    expect(() => model.check(request, wrong, "second")).toThrow(
      /second[\s\S]*store: {5}\[1, [\s\S]*reference: \[1, [\s\S]*history:[\s\S]*first/,
    );
  });

  it("refuses an answer from a clock that went backwards", () => {
    const time = fakeTime();
    const factory = new RequestFactory(policies, "t", referenceStore(time.now), time);
    const peek = factory.build(factory.plan.resolve("k"), { op: "peek" });
    const model = new ReferenceModel();
    model.check(peek, model.expected(peek, 1_000));
    expect(() => model.check(peek, [1, 999, 0, 0, 2, 2, 999, 0, 0])).toThrow(/went backwards/);
  });
});
