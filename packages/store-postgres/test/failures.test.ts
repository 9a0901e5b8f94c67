import * as net from "node:net";
import { createLimiter, SluiceError } from "@sluice/core";
import { compilePolicies, KeyPlan, type StoreRequest } from "@sluice/core/store";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyError, postgresStore } from "../src/index.js";
import { DATABASE_URL, dropTable, makePool, runPostgres, uniqueTable } from "./helpers.js";

const TABLE = uniqueTable("sluice_test_failures");
const policies = compilePolicies([{ kind: "fixedWindow", name: "fw", limit: 100, window: "1h" }]);

function take(id: string): StoreRequest {
  return {
    op: "take",
    policies,
    keys: [`f:{${id}}:fw:id=${id}`],
    partition: id,
    cost: 1,
    acquire: false,
    leaseId: undefined,
    leaseTtlMs: undefined,
    observations: undefined,
    learnedLimitTtlMs: 60_000,
    windowBounds: undefined,
  };
}

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError);
    return e as SluiceError;
  }
  throw new Error("expected a rejection");
}

/** A pool that fails every query with the given errors, in turn, then answers `answer`. */
function failingPool(errors: unknown[], answer = "1,1000,0,0,100,99,3600000,0,0"): pg.Pool {
  let calls = 0;
  return {
    options: { max: 1 },
    query: async () => {
      const e = errors[calls++];
      if (e !== undefined) throw e;
      return { rows: [[answer]], rowCount: 1 };
    },
  } as unknown as pg.Pool;
}

const sqlError = (code: string, message = `failed with ${code}`) =>
  Object.assign(new Error(message), { code });

describe("classifyError", () => {
  it.each([
    [sqlError("57014", "canceling statement due to statement timeout"), "STORE_TIMEOUT", true],
    [sqlError("55P03"), "STORE_TIMEOUT", true],
    [sqlError("40001"), "STORE_UNAVAILABLE", true],
    [sqlError("40P01"), "STORE_UNAVAILABLE", true],
    [
      sqlError("57P01", "terminating connection due to administrator command"),
      "STORE_UNAVAILABLE",
      true,
    ],
    [sqlError("08006"), "STORE_UNAVAILABLE", true],
    [sqlError("53300", "too many connections"), "STORE_UNAVAILABLE", true],
    [sqlError("42883", "function does not exist"), "STORE_UNAVAILABLE", false],
    [sqlError("28P01"), "STORE_UNAVAILABLE", false],
    [sqlError("22003", "bigint out of range"), "STORE_UNAVAILABLE", false],
    [sqlError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"), "STORE_UNAVAILABLE", true],
    [sqlError("ECONNRESET"), "STORE_UNAVAILABLE", true],
    [sqlError("ETIMEDOUT"), "STORE_TIMEOUT", true],
    [new Error("timeout exceeded when trying to connect"), "STORE_TIMEOUT", true],
    [new Error("Query read timeout"), "STORE_TIMEOUT", true],
    [new Error("Connection terminated unexpectedly"), "STORE_UNAVAILABLE", true],
    [
      new Error("Client has encountered a connection error and is not queryable"),
      "STORE_UNAVAILABLE",
      true,
    ],
    [new Error("Cannot use a pool after calling end on the pool"), "STORE_UNAVAILABLE", false],
  ])("classifies %s", (error, code, retryable) => {
    const e = classifyError(error);
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(e.cause).toBe(error);
  });

  it("passes a SluiceError through", () => {
    const e = new SluiceError("STORE_TIMEOUT", "x");
    expect(classifyError(e)).toBe(e);
  });

  it("rejects every request of a failed batch with the classified error", async () => {
    const store = postgresStore({ pool: failingPool([sqlError("57014")]), lanes: 1 });
    const [a, b] = await Promise.allSettled([store.execute(take("a")), store.execute(take("a"))]);
    expect(a.status).toBe("rejected");
    expect((a as PromiseRejectedResult).reason.code).toBe("STORE_TIMEOUT");
    // The second request went in the next batch, which succeeded.
    expect(b.status).toBe("fulfilled");
  });

  it("re-runs a batch once after a deadlock or serialization failure", async () => {
    const store = postgresStore({ pool: failingPool([sqlError("40001")]) });
    expect((await store.execute(take("a")))[0]).toBe(1);
    const twice = postgresStore({ pool: failingPool([sqlError("40P01"), sqlError("40P01")]) });
    expect((await rejection(twice.execute(take("a")))).retryable).toBe(true);
  });
});

describe("names", () => {
  it.each([
    ["x; drop table"],
    ['a"b'],
    ["it's"],
    ["x".repeat(64)],
    [""],
    ["1abc"],
    ["a.b"],
    ["naïve"],
  ])("refuses the table name %j", (table) => {
    const pool = failingPool([]);
    expect(() => postgresStore({ pool, table })).toThrow(/plain identifier/);
    expect(() => postgresStore({ pool, schema: table })).toThrow(SluiceError);
  });

  it("accepts plain identifiers up to the length PostgreSQL keeps", () => {
    const pool = failingPool([]);
    expect(postgresStore({ pool, table: "x".repeat(55), schema: "S_1" }).names.qualifiedTable).toBe(
      `"S_1"."${"x".repeat(55)}"`,
    );
  });
});

/** A TCP proxy in front of PostgreSQL that can be cut (every connection dropped, new ones refused). */
async function startProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.runIf(runPostgres)("failures against a real server", () => {
  let admin: pg.Pool;

  beforeAll(async () => {
    admin = makePool({ max: 4 });
    await dropTable(admin, TABLE);
    await postgresStore({ pool: admin, table: TABLE }).migrate();
  });
  afterAll(async () => {
    await dropTable(admin, TABLE);
    await admin.end();
  });

  it("fails only the request the server refuses, not the ones batched with it", async () => {
    const pool = makePool();
    const store = postgresStore({ pool, table: TABLE, lanes: 1 });
    const [a, bad, c] = await Promise.allSettled([
      store.execute(take("fine-1")),
      store.execute(take("nul\u0000byte")),
      store.execute(take("fine-2")),
    ]);
    expect(a.status).toBe("fulfilled");
    expect(c.status).toBe("fulfilled");
    expect(bad.status).toBe("rejected");
    const e = (bad as PromiseRejectedResult).reason as SluiceError;
    expect(e.code).toBe("STORE_UNAVAILABLE");
    expect(e.retryable).toBe(false);
    await pool.end();
  });

  it("classifies connection refused as retryable STORE_UNAVAILABLE", async () => {
    const pool = makePool({ connectionString: "postgres://postgres@127.0.0.1:1/test" });
    const store = postgresStore({ pool, table: TABLE });
    const e = await rejection(store.execute(take("refused")));
    expect(e.code).toBe("STORE_UNAVAILABLE");
    expect(e.retryable).toBe(true);
    await pool.end();
  });

  it("classifies a statement timeout behind a held row lock, then answers once it is free", async () => {
    const pool = makePool({ statement_timeout: 300 });
    const store = postgresStore({ pool, table: TABLE });
    await store.execute(take("locked"));
    const holder = await admin.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "public"."${TABLE}" WHERE key = $1 FOR UPDATE`, [
        take("locked").keys[0],
      ]);
      const e = await rejection(store.execute(take("locked")));
      expect(e.code).toBe("STORE_TIMEOUT");
      expect(e.retryable).toBe(true);
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect((await store.execute(take("locked")))[4 + 1]).toBe(98);
    await pool.end();
  });

  it("classifies pool exhaustion as STORE_TIMEOUT and recovers when a client is returned", async () => {
    const pool = makePool({ max: 1, connectionTimeoutMillis: 150 });
    const store = postgresStore({ pool, table: TABLE });
    const held = await pool.connect();
    const e = await rejection(store.execute(take("exhausted")));
    expect(e.code).toBe("STORE_TIMEOUT");
    held.release();
    expect((await store.execute(take("exhausted")))[0]).toBe(1);
    await pool.end();
  });

  it("survives pg_terminate_backend of its connections without being recreated", async () => {
    // The name is this run's own: the terminate below must not reach another run's connections.
    const applicationName = `sluice-test-terminate-${TABLE}`;
    const pool = makePool({ application_name: applicationName });
    const store = postgresStore({ pool, table: TABLE });
    await store.execute(take("terminated"));
    // Hold the row so a call is in flight on a backend when it is terminated.
    const holder = await admin.connect();
    await holder.query("BEGIN");
    await holder.query(`SELECT 1 FROM "public"."${TABLE}" WHERE key = $1 FOR UPDATE`, [
      take("terminated").keys[0],
    ]);
    const inFlight = rejection(store.execute(take("terminated")));
    await new Promise((r) => setTimeout(r, 100));
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
      [applicationName],
    );
    const e = await inFlight;
    expect(e.code).toBe("STORE_UNAVAILABLE");
    expect(e.retryable).toBe(true);
    await holder.query("ROLLBACK");
    holder.release();
    const r = await store.execute(take("terminated"));
    expect(r[0]).toBe(1);
    expect(r[4 + 1]).toBe(98); // the terminated call was rolled back: charged nothing
    await pool.end();
  });

  it("fails fast while the network is cut and recovers when it is back, same store", async () => {
    const proxy = await startProxy(new URL(DATABASE_URL));
    const url = new URL(DATABASE_URL);
    url.host = `127.0.0.1:${proxy.port}`;
    const pool = makePool({ connectionString: url.toString(), connectionTimeoutMillis: 1000 });
    const store = postgresStore({ pool, table: TABLE });
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "fw", limit: 100, window: "1h" }],
      onStoreError: "throw",
      timeoutMs: 2000,
    });
    expect((await limiter.take("cut")).allowed).toBe(true);
    proxy.cut();
    const started = Date.now();
    const e = await rejection(limiter.take("cut"));
    expect(["STORE_UNAVAILABLE", "STORE_TIMEOUT"]).toContain(e.code);
    expect(e.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
    proxy.restore();
    let decision: Awaited<ReturnType<typeof limiter.take>> | undefined;
    for (let i = 0; i < 20 && decision === undefined; i++) {
      decision = await limiter.take("cut").catch(() => undefined);
    }
    expect(decision?.allowed).toBe(true);
    expect(decision?.remaining).toBe(98);
    await pool.end();
    await proxy.close();
  });

  it("lets the limiter deny within timeoutMs while the store is stuck, and absorbs the late answer", async () => {
    const pool = makePool();
    const store = postgresStore({ pool, table: TABLE });
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "fw", limit: 100, window: "1h" }],
      prefix: "f",
      timeoutMs: 200,
    });
    await limiter.take("stuck");
    const holder = await admin.connect();
    await holder.query("BEGIN");
    const stateKey = new KeyPlan("f", limiter.policies, undefined, false).resolve("stuck").keys[0];
    await holder.query(`SELECT 1 FROM "public"."${TABLE}" WHERE key = $1 FOR UPDATE`, [stateKey]);
    const started = Date.now();
    const d = await limiter.take("stuck");
    expect(Date.now() - started).toBeLessThan(600);
    expect(d.allowed).toBe(false);
    expect(d.degraded).toBe(true);
    await holder.query("ROLLBACK");
    holder.release();
    await store.close(); // waits for the late batch, which must not surface anywhere
    await pool.end();
  });
});
