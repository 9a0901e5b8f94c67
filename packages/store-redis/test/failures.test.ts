import { createLimiter, SluiceError } from "@sluice/core";
import { compilePolicies } from "@sluice/core/store";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyError, RedisStore } from "../src/index.js";
import { freePort, keysFor, OwnRedis, request, sleep } from "./helpers.js";

const policies = compilePolicies([
  { kind: "fixedWindow", name: "fw", limit: 3, window: "1h", align: "firstUse" },
  { kind: "concurrency", name: "slots", limit: 1, leaseTtl: "10s" },
]);

function replyError(message: string): Error {
  const e = new Error(message);
  e.name = "ReplyError";
  return e;
}

describe("classifyError", () => {
  it.each([
    [
      "a refused connection",
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      "STORE_UNAVAILABLE",
      true,
    ],
    ["a closed connection", new Error("Connection is closed."), "STORE_UNAVAILABLE", true],
    [
      "the offline queue giving up",
      Object.assign(new Error("Reached the max retries per request limit (which is 0)."), {
        name: "MaxRetriesPerRequestError",
      }),
      "STORE_UNAVAILABLE",
      true,
    ],
    ["a command timeout", new Error("Command timed out"), "STORE_TIMEOUT", true],
    [
      "a socket timeout",
      Object.assign(new Error("connect ETIMEDOUT"), { code: "ETIMEDOUT" }),
      "STORE_TIMEOUT",
      true,
    ],
    [
      "a script error",
      replyError("ERR user_script:12: attempt to compare nil with number"),
      "STORE_UNAVAILABLE",
      false,
    ],
    [
      "a busy server",
      replyError("BUSY Redis is busy running a script."),
      "STORE_UNAVAILABLE",
      true,
    ],
    [
      "a cluster failover",
      replyError("CLUSTERDOWN The cluster is down"),
      "STORE_UNAVAILABLE",
      true,
    ],
    [
      "another program's value at our key",
      replyError("WRONGTYPE Operation against a key holding the wrong kind of value"),
      "STORE_UNAVAILABLE",
      false,
    ],
    [
      "keys in several slots",
      replyError("CROSSSLOT Keys in request don't hash to the same slot"),
      "STORE_UNAVAILABLE",
      false,
    ],
  ])("classifies %s", (_what, error, code, retryable) => {
    const e = classifyError(error);
    expect(e).toBeInstanceOf(SluiceError);
    expect(e).toMatchObject({ code, retryable, cause: error });
  });

  it("passes a SluiceError through", () => {
    const e = new SluiceError("STORE_TIMEOUT", "x");
    expect(classifyError(e)).toBe(e);
  });
});

/** A client that fails on purpose, the way ioredis rejects. */
function failingClient(error: Error): Redis {
  return {
    call: () => Promise.reject(error),
    script: () => Promise.reject(error),
    isCluster: false,
    options: {},
  } as unknown as Redis;
}

describe("redis store failures", () => {
  it("rejects every call with the classified error of a failing client", async () => {
    const keys = keysFor(policies, "f");
    for (const [error, code, retryable] of [
      [new Error("Command timed out"), "STORE_TIMEOUT", true],
      [
        Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
        "STORE_UNAVAILABLE",
        true,
      ],
      // A script error is a misconfiguration: it rejects whatever onStoreError says.
      [replyError("ERR Error running script"), "STORE_UNAVAILABLE", false],
    ] as const) {
      const store = new RedisStore({ client: failingClient(error) });
      await expect(store.execute(request(policies, keys, "take"))).rejects.toMatchObject({
        code,
        retryable,
      });
      await expect(store.migrate()).rejects.toMatchObject({ code });
    }
  });

  it("fails fast with STORE_UNAVAILABLE when nothing listens", async () => {
    const client = new Redis({
      // A port the OS just handed out and took back: nothing listens there.
      port: await freePort(),
      host: "127.0.0.1",
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    client.on("error", () => {});
    const store = new RedisStore({ client });
    await expect(
      store.execute(request(policies, keysFor(policies, "x"), "take")),
    ).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
      retryable: true,
    });
    client.disconnect();
  });
});

describe("Redis killed and restarted mid-run", () => {
  let server: OwnRedis;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  let client: Redis;

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    server = new OwnRedis(await freePort());
    await server.start();
    // Defaults except a fast reconnect; commands issued while it is down wait in the offline
    // queue, so the limiter's timeoutMs is what bounds them.
    client = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: 2 });
    client.on("error", () => {});
  });
  afterAll(() => {
    client?.disconnect();
    server.stop();
    process.off("unhandledRejection", onUnhandled);
  });

  it("classifies the failures, then decides again once Redis is back, without a new store", async () => {
    const store = new RedisStore({ client });
    const limiter = createLimiter({
      store,
      policies: [{ kind: "fixedWindow", name: "fw", limit: 3, window: "1h", align: "firstUse" }],
      onStoreError: "throw",
      timeoutMs: 300,
    });
    expect((await limiter.take("k")).allowed).toBe(true);

    server.kill();
    const errors: SluiceError[] = [];
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      const t0 = Date.now();
      const e = await limiter.take("k").then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(SluiceError);
      errors.push(e as SluiceError);
      expect(Date.now() - t0).toBeLessThan(1_000); // nothing waits past timeoutMs (plus slack)
      // Straight to the store too: ioredis gives up on its own after maxRetriesPerRequest.
      const direct = await store
        .execute(request(policies, keysFor(policies, "direct"), "take"))
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(direct).toBeInstanceOf(SluiceError);
      errors.push(direct as SluiceError);
    }
    for (const e of errors) {
      expect(["STORE_UNAVAILABLE", "STORE_TIMEOUT"]).toContain(e.code);
      expect(e.retryable).toBe(true);
    }
    expect(Date.now() - started).toBeLessThan(15_000);

    // The restarted server has neither the state nor the script (NOSCRIPT -> EVAL).
    await server.start();
    let decided = false;
    for (let i = 0; i < 100 && !decided; i++) {
      decided = await limiter.take("k").then(
        (d) => d.allowed,
        () => false,
      );
      if (!decided) await sleep(50);
    }
    expect(decided).toBe(true);
    const d = await limiter.peek("k");
    expect(d.policies[0]!.remaining).toBe(2); // fresh state: one admitted since the restart
    await sleep(100);
    expect(unhandled).toEqual([]);
  }, 30_000);

  it("recovers from a flushed script cache by sending the script once", async () => {
    const store = new RedisStore({ client });
    const keys = keysFor(policies, "flush");
    await store.execute(request(policies, keys, "take"));
    await client.script("FLUSH");
    const r = await store.execute(request(policies, keys, "take"));
    expect(r[0]).toBe(1);
    expect(r[4 + 1]).toBe(1); // state survived, only the script was lost
  });

  it("turns a command timeout into STORE_TIMEOUT", async () => {
    const slow = new Redis(server.url, { commandTimeout: 100 });
    const pauser = new Redis(server.url);
    try {
      await slow.ping();
      await pauser.client("PAUSE", 400, "ALL");
      const store = new RedisStore({ client: slow });
      await expect(
        store.execute(request(policies, keysFor(policies, "t"), "take")),
      ).rejects.toMatchObject({
        code: "STORE_TIMEOUT",
        retryable: true,
      });
    } finally {
      await sleep(450);
      slow.disconnect();
      pauser.disconnect();
    }
  });
});
