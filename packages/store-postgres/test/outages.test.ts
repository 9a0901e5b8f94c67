import { setTimeout as sleep } from "node:timers/promises";
import { createLimiter, type Policy } from "@sluice/core";
import {
  compilePolicies,
  DeadlinePassedError,
  KeyPlan,
  readAnswer,
  type StoreRequest,
} from "@sluice/core/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyError } from "../src/classify-error.js";
import { postgresStore } from "../src/index.js";
import {
  dropTable,
  makePool,
  migratedStore,
  runPostgres,
  serverNowMs,
  uniqueTable,
} from "./helpers.js";

const policies: Policy[] = [{ kind: "fixedWindow", name: "fw", limit: 1_000, window: "1h" }];

describe.runIf(runPostgres)("PostgreSQL outages", () => {
  const table = uniqueTable("outage");
  const db = migratedStore(table);

  it("takes that timed out while their rows were locked are not applied once the lock goes", async () => {
    const limiter = createLimiter({ store: db.store, policies, timeoutMs: 300, breaker: false });
    for (let i = 0; i < 3; i++) expect((await limiter.take("k")).allowed).toBe(true);
    // Another session holds the state row: every decision on it waits for the lock, past its
    // deadline (the server sees no difference from a paused or overloaded server).
    const blocker = await db.pool.connect();
    try {
      await blocker.query("BEGIN");
      const locked = await blocker.query(`SELECT key FROM "${table}" FOR UPDATE`);
      expect(locked.rowCount).toBeGreaterThan(0);
      const during = await Promise.all(Array.from({ length: 20 }, () => limiter.take("k")));
      expect(during.every((d) => d.degraded === true)).toBe(true);
      await sleep(200);
    } finally {
      await blocker.query("COMMIT");
      blocker.release();
    }
    await sleep(300);
    const after = await limiter.peek("k");
    expect(after.degraded).toBeUndefined();
    expect(after.policies[0]!.remaining).toBe(997);
  }, 20_000);
});

describe.runIf(runPostgres)("late requests in one batch", () => {
  const table = uniqueTable("late_batch");
  const db = migratedStore(table);

  it("skips exactly the late ones, and later reconciles still read their own observations", async () => {
    const compiled = compilePolicies(policies);
    const plan = new KeyPlan(`late${process.pid}`, compiled, undefined, false);
    // Deadlines are on the store's clock.
    const now = await serverNowMs(db.pool);
    const request = (key: string, op: "take" | "reconcile", deadlineMs: number): StoreRequest => {
      const r = plan.resolve(key);
      return {
        op,
        policies: compiled,
        keys: r.keys,
        partition: r.partition,
        cost: op === "take" ? 1 : 0,
        acquire: false,
        leaseId: undefined,
        leaseTtlMs: undefined,
        observations:
          op === "reconcile"
            ? [{ remaining: key === "b" ? 5 : 7, limit: undefined, resetAtMs: undefined }]
            : undefined,
        learnedLimitTtlMs: 60_000,
        windowBounds: undefined,
        deadlineMs,
      };
    };
    const past = now - 60_000;
    const future = now + 60_000;
    // Issued together: one call of the function.
    const settled = await Promise.allSettled([
      db.store.execute(request("a", "take", past)),
      db.store.execute(request("b", "reconcile", past)),
      db.store.execute(request("c", "reconcile", future)),
      db.store.execute(request("d", "take", future)),
    ]);
    expect(settled[0]).toMatchObject({
      status: "rejected",
      reason: expect.any(DeadlinePassedError),
    });
    expect(settled[1]).toMatchObject({
      status: "rejected",
      reason: expect.any(DeadlinePassedError),
    });
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ code: "STORE_TIMEOUT" });
    expect(settled[2]!.status).toBe("fulfilled");
    expect(settled[3]!.status).toBe("fulfilled");
    const peek = async (key: string) => {
      const r = plan.resolve(key);
      const out = await db.store.execute({
        ...request(key, "take", 0),
        keys: r.keys,
        op: "peek",
        cost: 0,
      });
      return readAnswer(out, 1).remaining(0);
    };
    expect(await peek("a")).toBe(1_000);
    expect(await peek("b")).toBe(1_000);
    expect(await peek("c")).toBe(7);
    expect(await peek("d")).toBe(999);
  });
});

describe.runIf(runPostgres)("PostgreSQL misconfiguration is loud", () => {
  let pool: ReturnType<typeof makePool>;
  beforeAll(() => {
    pool = makePool();
  });
  afterAll(() => pool.end());

  it('rejects a missing table with "run store.migrate()" under the default deny', async () => {
    const store = postgresStore({ pool, table: uniqueTable("never_migrated") });
    const limiter = createLimiter({ store, policies });
    const errors: string[] = [];
    limiter.on("storeError", (e) => errors.push(e.handling));
    for (let i = 0; i < 7; i++) {
      await expect(limiter.take("k")).rejects.toMatchObject({
        code: "STORE_UNAVAILABLE",
        retryable: false,
        message: expect.stringContaining("run store.migrate()"),
      });
    }
    // Never hidden behind the breaker either: every call reaches the server and says why.
    expect(errors).toEqual(Array(7).fill("throw"));
  });
});

describe.runIf(runPostgres)("prepared statements of long table names", () => {
  // 55 characters (the longest table name), the same first 50: PostgreSQL truncates names to
  // 63 bytes, so "sluice:public.<table>:execute" would be one name for both.
  const base = `t${process.pid}_${"x".repeat(55)}`.slice(0, 50);
  const tables = [`${base}_aaaa`, `${base}_bbbb`];
  let pool: ReturnType<typeof makePool>;
  beforeAll(async () => {
    pool = makePool({ max: 1 });
    for (const t of tables) await dropTable(pool, t);
  });
  afterAll(async () => {
    for (const t of tables) await dropTable(pool, t);
    await pool.end();
  });

  it("two stores sharing one pool (one connection) both decide", async () => {
    const stores = tables.map((table) => postgresStore({ pool, table }));
    for (const s of stores) await s.migrate();
    const limiters = stores.map((store) =>
      createLimiter({ store, policies, onStoreError: "throw" }),
    );
    for (let i = 0; i < 50; i++) {
      for (const l of limiters) expect((await l.take("k")).allowed).toBe(true);
    }
    for (const l of limiters) expect((await l.peek("k")).policies[0]!.remaining).toBe(950);
    for (const s of stores) {
      expect(Buffer.byteLength(`${s.names.statementPrefix}:execute`)).toBeLessThanOrEqual(63);
    }
  });

  it("calls a prepared-statement name clash (42P05) retryable: another connection succeeds", () => {
    const e = classifyError(
      Object.assign(new Error('prepared statement "x" already exists'), { code: "42P05" }),
    );
    expect(e).toMatchObject({ code: "STORE_UNAVAILABLE", retryable: true });
  });
});
