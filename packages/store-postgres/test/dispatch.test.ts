import {
  type CompiledPolicy,
  compilePolicies,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core/store";
import fc from "fast-check";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { postgresStore } from "../src/index.js";
import {
  expectIssueOrder,
  migratedStore,
  plainRequest,
  runPostgres,
  uniqueTable,
} from "./helpers.js";

const TABLE = uniqueTable("sluice_test_dispatch");

/** The execute calls a store makes through `pool`: their state keys; answers held until released. */
function watchedPool(real: pg.Pool) {
  const calls: { keys: string[]; answered: boolean; settled: boolean }[] = [];
  let gate: Promise<void> | undefined;
  let open = () => {};
  let overlap: string | undefined;
  let most = 0;
  const pool = {
    async query(config: { name?: string; values?: unknown[] }) {
      if (!config.name?.endsWith(":execute")) return real.query(config as pg.QueryConfig);
      // p_ukeys, the call's distinct state keys, is the fourth argument (an array literal).
      const keys = [...String(config.values![3]).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(
        (m) => m[1]!,
      );
      for (const c of calls) {
        if (!c.settled && c.keys.some((k) => keys.includes(k))) overlap ??= keys.join(" ");
      }
      const call = { keys, answered: false, settled: false };
      calls.push(call);
      const inFlight = calls.filter((c) => !c.settled).length;
      if (inFlight > most) most = inFlight;
      try {
        // Held calls answer together once released (their transactions are done by then).
        const held = gate;
        const result = await real.query(config as pg.QueryConfig);
        call.answered = true;
        if (held !== undefined) await held;
        return result;
      } finally {
        call.settled = true;
      }
    },
  };
  return {
    pool: pool as unknown as pg.Pool,
    calls,
    /** A key that was in two calls in flight at once, if any. */
    overlap: () => overlap,
    /** Most calls in flight at once. */
    most: () => most,
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release() {
      gate = undefined;
      open();
    },
  };
}

const ticks = (n: number) =>
  new Promise<void>((resolve) => {
    const step = (left: number) => (left === 0 ? resolve() : setImmediate(step, left - 1));
    step(n);
  });

const request = (
  policies: readonly CompiledPolicy[],
  partition: string,
  op: "take" | "refund" | "peek",
  cost: number,
): StoreRequest =>
  plainRequest(
    policies,
    policies.map((p) => `dispatch:{${partition}}:${p.name}`),
    partition,
    op,
    cost,
  );

describe.runIf(runPostgres)("postgres store: calls in flight", () => {
  const db = migratedStore(TABLE);
  const policies = compilePolicies([
    { kind: "tokenBucket", name: "tb", capacity: 40, refill: { tokens: 1, every: 50 } },
    { kind: "fixedWindow", name: "fw", limit: 60, window: "1h" },
  ]);

  it("sends one call at a time until 64 requests wait, then a second without the partitions the first holds", async () => {
    const w = watchedPool(db.pool);
    const store = postgresStore({ pool: w.pool, table: TABLE });
    w.hold();
    const requests = [request(policies, "hot", "take", 1)];
    const pending = [store.execute(requests[0]!)];
    for (let i = 1; i <= 63; i++) {
      requests.push(request(policies, i % 2 === 0 ? "hot" : `p${i}`, "take", 1 + (i % 3)));
      pending.push(store.execute(requests[i]!));
    }
    await ticks(3);
    expect(w.calls).toHaveLength(1);
    expect(w.calls[0]!.keys).toEqual(["dispatch:{hot}:fw", "dispatch:{hot}:tb"]);

    // The 64th waiting request lets a second call leave; "hot" is the first call's, so its
    // requests stay queued behind it.
    requests.push(request(policies, "p64", "take", 2));
    pending.push(store.execute(requests[64]!));
    expect(w.calls).toHaveLength(2);
    const second = w.calls[1]!.keys;
    expect(second).toHaveLength(2 * 33);
    expect(second.some((k) => k.includes("{hot}"))).toBe(false);

    w.release();
    const results = await Promise.all(pending);
    // The third call: the 31 requests of "hot" that waited, in one batch.
    expect(w.calls[2]!.keys).toEqual(["dispatch:{hot}:fw", "dispatch:{hot}:tb"]);
    expect(w.overlap()).toBeUndefined();
    expectIssueOrder(requests, results, (r) => r.partition);
    await store.close();
  });

  it("shares a backlog out over the calls allowed once the calls in flight have answered", async () => {
    const w = watchedPool(db.pool);
    const store = postgresStore({ pool: w.pool, table: TABLE });
    w.hold();
    const requests = Array.from({ length: 215 }, (_, i) => request(policies, `s${i}`, "take", 1));
    const pending = requests.map((r) => store.execute(r));
    await ticks(3);
    // The first alone, the next 64 once 64 waited; then two calls are in flight, the most allowed.
    expect(w.calls.map((c) => c.keys.length)).toEqual([2, 128]);
    // Both answer in the same moment.
    while (!w.calls.every((c) => c.answered)) await new Promise((r) => setTimeout(r, 10));
    w.release();
    const results = await Promise.all(pending);
    // The 150 left: two calls of 75 at once, not one of 150.
    expect(w.calls.slice(2).map((c) => c.keys.length)).toEqual([150, 150]);
    expect(w.most()).toBe(2);
    expect(w.overlap()).toBeUndefined();
    expectIssueOrder(requests, results, (r) => r.partition);
    await store.close();
  });

  it("with lanes: 1 never sends a second call, whatever waits", async () => {
    const w = watchedPool(db.pool);
    const store = postgresStore({ pool: w.pool, table: TABLE, lanes: 1 });
    w.hold();
    const requests = Array.from({ length: 300 }, (_, i) =>
      request(policies, `one${i % 50}`, "take", 1),
    );
    const pending = requests.map((r) => store.execute(r));
    await ticks(3);
    expect(w.calls).toHaveLength(1);
    w.release();
    const results = await Promise.all(pending);
    // 1, then the 256 of maxBatch, then the other 43.
    expect(w.calls.map((c) => c.keys.length)).toEqual([2, 100, 86]);
    expectIssueOrder(requests, results, (r) => r.partition);
    await store.close();
  });

  it("keeps each partition in issue order and in one call at a time, with many calls in flight", async () => {
    let runs = 0;
    let most = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            partition: fc.integer({ min: 0, max: 5 }),
            op: fc.constantFrom(
              "take" as const,
              "take" as const,
              "refund" as const,
              "peek" as const,
            ),
            cost: fc.integer({ min: 0, max: 4 }),
            // Requests issued in the same macrotask share a wave.
            wave: fc.boolean(),
          }),
          { minLength: 20, maxLength: 300 },
        ),
        async (steps) => {
          // Fresh keys for every run, shrinking included: no state carries over.
          const run = ++runs;
          const w = watchedPool(db.pool);
          // maxBatch 4: a second call may leave once 4 requests wait, so up to 4 are in flight.
          const store = postgresStore({ pool: w.pool, table: TABLE, lanes: 4, maxBatch: 4 });
          const requests = steps.map((s) =>
            request(policies, `r${run}-${s.partition}`, s.op, s.cost),
          );
          const pending: Promise<StoreResult>[] = [];
          for (let i = 0; i < requests.length; i++) {
            if (steps[i]!.wave) await new Promise((r) => setImmediate(r));
            pending.push(store.execute(requests[i]!));
          }
          const results = await Promise.all(pending);
          await store.close();
          most = Math.max(most, w.most());
          expect(w.overlap()).toBeUndefined();
          expectIssueOrder(requests, results, (r) => r.partition);
        },
      ),
      { numRuns: process.env.CI ? 60 : 30 },
    );
    expect(most).toBe(4);
  }, 60_000);
});
