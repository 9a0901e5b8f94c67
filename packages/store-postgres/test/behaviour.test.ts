import { createLimiter, SluiceError } from "@sluice/core";
import { compilePolicies, type StoreRequest } from "@sluice/core/store";
import type pg from "pg";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { type PostgresStore, postgresStore } from "../src/index.js";
import {
  expectIssueOrder,
  migratedStore,
  plainRequest,
  runPostgres,
  testClockStore,
  uniqueTable,
} from "./helpers.js";

const TABLE = uniqueTable("sluice_test_behaviour");
const CLEAN_TABLE = uniqueTable("sluice_test_clean");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(runPostgres)("postgres store behaviour", () => {
  let pool: pg.Pool;
  let store: PostgresStore;
  const rows = async (like: string) =>
    Number(
      (
        await pool.query(`SELECT count(*) AS n FROM "public"."${TABLE}" WHERE key LIKE $1`, [
          `${like}%`,
        ])
      ).rows[0].n,
    );

  const db = migratedStore(TABLE);
  beforeAll(() => {
    pool = db.pool;
    store = db.store;
  });

  it("stores keys with quotes, backslashes, braces, commas, spaces and non-ASCII as sent", async () => {
    // The client writes the array literals itself: every key must reach the server unchanged and
    // stay distinct from its look-alikes, batched together.
    const policies = compilePolicies([{ kind: "fixedWindow", name: "w", limit: 5, window: "1h" }]);
    const odd = ['q"uote', "back\\slash", "\\", '"', "{br,ace}", "sp ace", "NULL", "", "é𝄞", "a,b"];
    const keys = odd.map((k) => `enc:{${k}}:w`);
    const req = (key: string, cost: number) => plainRequest(policies, [key], key, "take", cost);
    const single = postgresStore({ pool, table: TABLE, lanes: 1 });
    const results = await Promise.all(keys.map((k, i) => single.execute(req(k, 1 + (i % 3)))));
    expect(results.map((r) => r[4 + 1])).toEqual(keys.map((_, i) => 5 - (1 + (i % 3))));
    const { rows: stored } = await pool.query(
      `SELECT key, a FROM "public"."${TABLE}" WHERE key LIKE 'enc:%' ORDER BY key`,
    );
    expect(stored.map((r: { key: string }) => r.key)).toEqual([...keys].sort());
    for (const r of stored as { key: string; a: string }[]) {
      expect(Number(r.a)).toBe(1 + (keys.indexOf(r.key) % 3));
    }
  });

  it("migrate is idempotent, also when several run at once", async () => {
    const others = Array.from({ length: 4 }, () => postgresStore({ pool, table: TABLE }));
    await Promise.all(others.map((s) => s.migrate()));
    await store.migrate();
  });

  it("migrate replaces an execute function of an older signature instead of keeping both", async () => {
    await pool.query(
      `CREATE FUNCTION "public"."${TABLE}_execute"(integer) RETURNS integer LANGUAGE sql AS 'SELECT 1'`,
    );
    await store.migrate();
    const { rows: fns } = await pool.query(
      "SELECT count(*)::int AS n FROM pg_proc WHERE proname = $1",
      [`${TABLE}_execute`],
    );
    expect(fns[0].n).toBe(1);
  });

  it("answers concurrent requests with lanes: 1 in issue order, exactly as evaluate() in that order", async () => {
    const policies = compilePolicies([
      { kind: "tokenBucket", name: "tb", capacity: 7, refill: { tokens: 1, every: 13 } },
      { kind: "slidingWindow", name: "sw", limit: 9, window: 40, precision: 4 },
      { kind: "concurrency", name: "c", limit: 3, leaseTtl: 50 },
    ]);
    // A second limiter in the same batches: a zoned window (bounds per request) and a pool.
    const other = compilePolicies([
      { kind: "fixedWindow", name: "day", limit: 40, window: "1d", timeZone: "Europe/London" },
      { kind: "pool", name: "pool", capacity: 6, refill: { tokens: 2, every: 30 } },
    ]);
    const now = Date.now();
    const bounds = [now - 86_400_000, now - 5_000, now + 80_000_000, now + 166_400_000];
    const single = postgresStore({ pool, table: TABLE, lanes: 1 });
    const ops = [
      "take",
      "take",
      "reconcile",
      "take",
      "peek",
      "refund",
      "release",
      "renew",
    ] as const;
    const keySets = [0, 1, 2].map((k) => policies.map((p) => `batch:{k${k}}:${p.name}:id=k${k}`));
    const otherKeys = other.map((p) => `batch:{o}:${p.name}:id=o`);
    const requests: StoreRequest[] = [];
    for (let i = 0; i < 400; i++) {
      const op = ops[i % ops.length]!;
      const mine = i % 4 !== 3;
      const pols = mine ? policies : other;
      requests.push({
        op,
        policies: pols,
        keys: mine ? keySets[i % 3]! : otherKeys,
        partition: mine ? `k${i % 3}` : "o",
        cost: op === "take" || op === "refund" ? 1 + (i % 3) : 0,
        acquire: op === "take" && i % 2 === 0,
        leaseId: `l${i % 5}`,
        leaseTtlMs: undefined,
        observations:
          op === "reconcile"
            ? pols.map((_, j) =>
                j === i % pols.length
                  ? { remaining: i % 5, limit: undefined, resetAtMs: undefined }
                  : undefined,
              )
            : undefined,
        learnedLimitTtlMs: 1000,
        windowBounds: mine ? undefined : [bounds, undefined],
      });
    }
    const results = await Promise.all(requests.map((r) => single.execute(r)));
    expectIssueOrder(requests, results);
  });

  // At a test clock of its own: 50 takes in a row may take longer than a refill on a busy
  // machine, and a bucket due by then could be swept in passing before the count.
  const clean = testClockStore(CLEAN_TABLE);
  it("deletes state that is back to default on write, and sweeps state that drifted back", async () => {
    const t0 = Date.now();
    await clean.setNow(t0);
    const limiter = createLimiter({
      store: clean.store,
      prefix: "clean",
      // The store's clock only moves when set: no deadline may fall between two settings.
      timeoutMs: 60_000,
      policies: [
        { kind: "tokenBucket", name: "tb", capacity: 2, refill: { tokens: 1, every: 400 } },
      ],
    });
    const rows = async (like: string) =>
      Number(
        (
          await clean.pool.query(
            `SELECT count(*) AS n FROM "public"."${CLEAN_TABLE}" WHERE key LIKE $1`,
            [`${like}%`],
          )
        ).rows[0].n,
      );
    for (let i = 0; i < 50; i++) await limiter.take(`user-${i}`);
    expect(await rows("clean:")).toBe(50);
    await limiter.refund("user-0", { cost: 1 }); // back to full: deleted on write
    expect(await rows("clean:")).toBe(49);
    await clean.setNow(t0 + 450); // every bucket refilled: due
    expect(await clean.store.sweep()).toBeGreaterThanOrEqual(49);
    expect(await rows("clean:")).toBe(0);
    // A refused take or a peek writes nothing.
    await limiter.peek("user-x");
    expect(await rows("clean:")).toBe(0);
  });

  it("keeps a learned limit like state, then forgets it", async () => {
    const limiter = createLimiter({
      store,
      prefix: "learn",
      learnedLimitTtlMs: 80,
      policies: [{ kind: "fixedWindow", name: "fw", limit: 10, window: "1h" }],
    });
    await limiter.reconcile("k", [{ policy: "fw", limit: 3 }]);
    expect(await rows("learn:")).toBe(1);
    expect((await limiter.peek("k")).policies[0]!.limit).toBe(3);
    await sleep(120);
    expect((await limiter.peek("k")).policies[0]!.limit).toBe(10);
    await store.sweep();
    expect(await rows("learn:")).toBe(0);
  });

  it("does not sweep what a bucket consumed under a learned limit that lapsed", async () => {
    const policies = compilePolicies([
      { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: 1000 } },
    ]);
    const keys = ["lapse:{k}:tb:id=k"];
    const request = (op: StoreRequest["op"], extra: Partial<StoreRequest> = {}): StoreRequest => ({
      op,
      policies,
      keys,
      partition: "k",
      cost: op === "take" ? 1 : 0,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: 30,
      windowBounds: undefined,
      ...extra,
    });
    const observations = [{ remaining: undefined, limit: 8, resetAtMs: undefined }];
    await store.execute(request("reconcile", { observations }));
    await store.execute(request("take", { cost: 7 }));
    await sleep(60); // the learned limit (8) lapsed; nearly 7 still consumed, of 5
    await store.sweep();
    expect((await store.execute(request("peek")))[4 + 1]).toBe(0);
  });

  it("holds, renews and releases leases; a crashed holder's lease expires", async () => {
    const limiter = createLimiter({
      store,
      prefix: "lease",
      policies: [{ kind: "concurrency", name: "slots", limit: 2, leaseTtl: 150 }],
    });
    const a = await limiter.tryAcquire("k");
    const b = await limiter.tryAcquire("k");
    const c = await limiter.tryAcquire("k");
    expect(a.lease).not.toBeNull();
    expect(b.lease).not.toBeNull();
    expect(c.lease).toBeNull();
    await a.lease!.release();
    await a.lease!.release(); // idempotent
    await b.lease!.renew(400);
    // b "crashes": never released. After its ttl, its slot is free again.
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
    await sleep(450);
    const d = await limiter.tryAcquire("k");
    expect(d.lease).not.toBeNull();
    await expect(b.lease!.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    await d.lease!.release();
  });

  it("decides on the server clock: a skewed client clock changes nothing", async () => {
    const limiter = createLimiter({
      store,
      prefix: "skew",
      policies: [{ kind: "fixedWindow", name: "fw", limit: 2, window: "1h", align: "firstUse" }],
    });
    const first = await limiter.take("k");
    const spy = vi.spyOn(Date, "now").mockReturnValue(Date.now() + 3 * 3_600_000);
    try {
      const second = await limiter.take("k");
      const third = await limiter.take("k");
      expect(second.allowed).toBe(true);
      expect(third.allowed).toBe(false);
      expect(third.policies[0]!.resetAtMs).toBe(first.policies[0]!.resetAtMs);
    } finally {
      spy.mockRestore();
    }
  });

  it("refuses calls after close()", async () => {
    const s = postgresStore({ pool, table: TABLE });
    await s.close();
    const policies = compilePolicies([{ kind: "fixedWindow", name: "fw", limit: 1, window: 1000 }]);
    await expect(
      s.execute({
        op: "peek",
        policies,
        keys: ["x"],
        partition: "x",
        cost: 0,
        acquire: false,
        leaseId: undefined,
        leaseTtlMs: undefined,
        observations: undefined,
        learnedLimitTtlMs: 1,
        windowBounds: undefined,
      }),
    ).rejects.toBeInstanceOf(SluiceError);
  });
});
