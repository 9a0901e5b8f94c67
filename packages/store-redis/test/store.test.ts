import { readFileSync } from "node:fs";
import { createLimiter, SluiceError } from "@sluice/core";
import { compilePolicies } from "@sluice/core/store";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DECIDE_LUA, DECIDE_SHA, RedisStore, redisStore } from "../src/index.js";
import {
  deleteKeys,
  keysFor,
  OwnRedis,
  REDIS_URL,
  readScope,
  redisReachable,
  request,
  scopeKeyOf,
  sleep,
  uniquePrefix,
} from "./helpers.js";

const reachable = await redisReachable();

describe("redisStore options", () => {
  const client = new Redis({ lazyConnect: true });
  afterAll(() => client.disconnect());

  it("refuses a prefix with a brace, naming the field", () => {
    for (const prefix of ["a{b", "}", "{x}"]) {
      expect(() => redisStore({ client, prefix })).toThrow(
        expect.objectContaining({
          code: "CONFIG_INVALID",
          issues: [expect.objectContaining({ path: "prefix" })],
        }),
      );
    }
  });

  it("refuses something that is not an ioredis client", () => {
    expect(() => redisStore({ client: {} as Redis })).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        issues: [expect.objectContaining({ path: "client" })],
      }),
    );
  });

  it("refuses a client keyPrefix with a brace", () => {
    const braced = new Redis({ lazyConnect: true, keyPrefix: "{app}:" });
    expect(() => redisStore({ client: braced })).toThrow(/keyPrefix/);
    braced.disconnect();
  });

  it("declares a server clock and no partition need for a single Redis", () => {
    expect(redisStore({ client }).capabilities).toEqual({
      name: "redis",
      clock: "server",
      local: false,
      requiresPartition: false,
    });
  });

  it("ships the committed Lua sources module, and a script assembled from decide.lua", async () => {
    const inliner = new URL("../scripts/inline-lua.mjs", import.meta.url).href;
    const { renderSources } = (await import(inliner)) as { renderSources: () => string };
    const committed = readFileSync(new URL("../src/lua/decide-script.ts", import.meta.url), "utf8");
    expect(committed).toBe(renderSources());
    const lua = readFileSync(new URL("../src/lua/decide.lua", import.meta.url), "utf8");
    const [opening] = lua.split("-- @include");
    expect(DECIDE_LUA.startsWith(opening!)).toBe(true);
    expect(DECIDE_LUA).not.toContain("-- @include");
  });
});

describe.skipIf(!reachable)("redis store state in Redis", () => {
  let client: Redis;
  let store: RedisStore;
  let prefix: string;
  beforeAll(() => {
    client = new Redis(REDIS_URL);
    prefix = uniquePrefix("state");
    store = new RedisStore({ client, prefix });
  });
  afterAll(() => client.quit());

  const policies = compilePolicies([
    { kind: "tokenBucket", name: "tb", capacity: 3, refill: { tokens: 1, every: 100 } },
    { kind: "fixedWindow", name: "fw", limit: 5, window: "1h" },
    { kind: "concurrency", name: "slots", limit: 2, leaseTtl: 150 },
  ]);

  it("sends one EVALSHA per decision whatever the number of policies", async () => {
    // MONITOR sees every client's commands: on a server of its own, only this test's.
    const server = await OwnRedis.launch();
    const own = new Redis(server.url);
    try {
      const ownStore = new RedisStore({ client: own, prefix });
      const keys = keysFor(policies, "one-trip");
      // Load the script first: on a server that has never seen it, the first call is EVALSHA,
      // NOSCRIPT, then EVAL.
      await ownStore.execute(request(policies, keysFor(policies, "warm-up"), "peek"));
      const monitor = await own.monitor();
      const seen: string[] = [];
      monitor.on("monitor", (_t: string, args: string[]) => {
        if (args.some((a) => a.includes("one-trip"))) seen.push(String(args[0]).toLowerCase());
      });
      await ownStore.execute(request(policies, keys, "take", { acquire: true, leaseId: "x" }));
      // MONITOR reports commands in the order the server ran them: once a later marker command
      // shows up, everything the decision sent has been seen.
      await own.get(`${prefix}one-trip-end`);
      for (let i = 0; !seen.includes("get") && i < 200; i++) await sleep(10);
      monitor.disconnect();
      expect(seen).toContain("get");
      expect(seen.filter((c) => c === "evalsha" || c === "eval")).toHaveLength(1);
    } finally {
      own.disconnect();
      server.stop();
    }
  });

  it("sends up to 32 decisions issued in one tick in one script call (maxBatch's default)", async () => {
    const counting = new Redis(REDIS_URL);
    const batchPrefix = uniquePrefix("batch");
    // ioredis has evalshaBuffer at runtime; its typings omit it.
    const buffers = counting as unknown as {
      evalshaBuffer: (...args: (string | number)[]) => Promise<unknown>;
    };
    const real = buffers.evalshaBuffer.bind(counting);
    /** Keys of each script call: one per decision here. */
    const calls: number[] = [];
    buffers.evalshaBuffer = (...args) => {
      calls.push(Number(args[1]));
      return real(...args);
    };
    try {
      const batched = new RedisStore({ client: counting, prefix: batchPrefix });
      const window = compilePolicies([{ kind: "fixedWindow", name: "fw", limit: 5, window: "1m" }]);
      const takes = Array.from({ length: 33 }, (_, i) =>
        batched.execute(request(window, keysFor(window, `b${i}`), "take")),
      );
      await Promise.all(takes);
      expect(calls).toEqual([32, 1]);
    } finally {
      await deleteKeys(counting, batchPrefix);
      counting.disconnect();
    }
  });

  /** A client whose script calls are counted (keys per call), and held while `hold` is set. */
  function countingClient() {
    const counting = new Redis(REDIS_URL);
    // ioredis has evalshaBuffer at runtime; its typings omit it.
    const buffers = counting as unknown as {
      evalshaBuffer: (...args: (string | number)[]) => Promise<unknown>;
    };
    const real = buffers.evalshaBuffer.bind(counting);
    const calls: number[] = [];
    const held: (() => void)[] = [];
    const state = { hold: false };
    buffers.evalshaBuffer = (...args) => {
      calls.push(Number(args[1]));
      if (!state.hold) return real(...args);
      return new Promise<void>((resolve) => held.push(resolve)).then(() => real(...args));
    };
    const release = () => {
      for (const go of held.splice(0)) go();
    };
    return { counting, calls, state, release };
  }

  it("sends decisions made in separate callbacks of one event-loop turn in one script call", async () => {
    const { counting, calls } = countingClient();
    const batchPrefix = uniquePrefix("turn");
    try {
      const batched = new RedisStore({ client: counting, prefix: batchPrefix });
      const window = compilePolicies([{ kind: "fixedWindow", name: "fw", limit: 5, window: "1m" }]);
      // Immediates queued together run in one check phase, each its own callback (as HTTP
      // requests read in one poll are): a flush at the end of each tick would send three calls.
      const takes = await new Promise<Promise<unknown>[]>((resolve) => {
        const out: Promise<unknown>[] = [];
        for (let i = 0; i < 3; i++) {
          setImmediate(() => {
            out.push(batched.execute(request(window, keysFor(window, `t${i}`), "take")));
            if (out.length === 3) resolve(out);
          });
        }
      });
      await Promise.all(takes);
      expect(calls).toEqual([3]);
    } finally {
      await deleteKeys(counting, batchPrefix);
      counting.disconnect();
    }
  });

  it("has two script calls in flight at most; decisions made meanwhile go together in the next", async () => {
    const { counting, calls, state, release } = countingClient();
    const batchPrefix = uniquePrefix("lane");
    try {
      const batched = new RedisStore({ client: counting, prefix: batchPrefix });
      const window = compilePolicies([{ kind: "fixedWindow", name: "fw", limit: 5, window: "1m" }]);
      const take = (i: number) =>
        batched.execute(request(window, keysFor(window, `l${i}`), "take"));
      const turn = () => new Promise((r) => setImmediate(r));
      state.hold = true;
      const takes = [take(0)];
      await turn();
      takes.push(take(1));
      await turn();
      // Both calls are out: these three wait, each made in a turn of its own.
      for (let i = 2; i < 5; i++) {
        takes.push(take(i));
        await turn();
      }
      expect(calls).toEqual([1, 1]);
      state.hold = false;
      release();
      const answers = await Promise.all(takes);
      expect(calls).toEqual([1, 1, 3]);
      expect(answers.every((a) => a[0] === 1)).toBe(true);
    } finally {
      await deleteKeys(counting, batchPrefix);
      counting.disconnect();
    }
  });

  it("gives every key a TTL and deletes state that is back to default", async () => {
    const keys = keysFor(policies, "ttl");
    // tb and fw share one scope key (one entry each, with its own due); slots is a lease set.
    const scope = scopeKeyOf(prefix, keys[0]!);
    expect(scopeKeyOf(prefix, keys[1]!)).toBe(scope);
    const leases = prefix + keys[2];
    const taken = await store.execute(
      request(policies, keys, "take", { acquire: true, leaseId: "l" }),
    );
    const now = taken[1]!;
    const entries = await readScope(client, scope);
    expect([...entries.keys()].sort()).toEqual(["fw", "tb"]);
    const tbDue = entries.get("tb")!.due - now;
    expect(tbDue).toBeGreaterThan(0);
    expect(tbDue).toBeLessThanOrEqual(100);
    const fwDue = entries.get("fw")!.due - now;
    expect(fwDue).toBeGreaterThan(0);
    expect(fwDue).toBeLessThanOrEqual(3_600_000);
    // The key lives as long as its latest entry.
    const scopeTtl = await client.pttl(scope);
    expect(scopeTtl).toBeGreaterThan(0);
    expect(scopeTtl).toBeLessThanOrEqual(Math.max(fwDue, tbDue));
    const leaseTtl = await client.pttl(leases);
    expect(leaseTtl).toBeGreaterThan(0);
    expect(leaseTtl).toBeLessThanOrEqual(150);
    await store.execute(request(policies, keys, "refund", { cost: 1 }));
    await store.execute(request(policies, keys, "release", { leaseId: "l" }));
    expect(await client.exists(scope, leases)).toBe(0);
  });

  it("keeps a learned limit in the store, for every process, until it lapses", async () => {
    const keys = keysFor(policies, "learned");
    const other = new RedisStore({ client, prefix });
    await store.execute(
      request(policies, keys, "reconcile", {
        observations: [
          { limit: 1, remaining: undefined, resetAtMs: undefined },
          undefined,
          { limit: 1, remaining: undefined, resetAtMs: undefined },
        ],
        learnedLimitTtlMs: 300,
      }),
    );
    const r = await other.execute(request(policies, keys, "take", { acquire: true, leaseId: "a" }));
    expect([r[4], r[14]]).toEqual([1, 1]); // limits in force for tb and slots
    expect(
      (await other.execute(request(policies, keys, "take", { acquire: true, leaseId: "b" })))[0],
    ).toBe(0);
    // The slot policy's learned limit is an entry of the scope key, due when it lapses.
    const slots = (await readScope(client, scopeKeyOf(prefix, keys[2]!))).get("slots");
    expect(slots?.kind).toBe(5);
    expect(slots?.values[0]).toBe(1);
    expect(slots!.due).toBeGreaterThan(r[1]!);
    expect(await client.pttl(scopeKeyOf(prefix, keys[2]!))).toBeGreaterThan(0);
    await sleep(320);
    const after = await other.execute(request(policies, keys, "peek"));
    expect([after[4], after[14]]).toEqual([3, 2]);
  });

  it("keeps what a bucket consumed under a higher learned limit until it has refilled", async () => {
    const bucket = compilePolicies([
      { kind: "tokenBucket", name: "b", capacity: 10, refill: { tokens: 1, every: "1s" } },
    ]);
    const keys = keysFor(bucket, "lapse");
    await store.execute(
      request(bucket, keys, "reconcile", {
        observations: [{ limit: 20, remaining: undefined, resetAtMs: undefined }],
        learnedLimitTtlMs: 200,
      }),
    );
    await store.execute(request(bucket, keys, "take", { cost: 15 }));
    // 15 tokens to win back at one a second: fifteen seconds, however short the learned limit.
    expect(await client.pttl(scopeKeyOf(prefix, keys[0]!))).toBeGreaterThan(14_000);
    await sleep(400);
    // The learned limit lapsed; more than 10 still consumed under the configured capacity.
    const after = await store.execute(request(bucket, keys, "peek"));
    expect([after[4], after[5]]).toEqual([10, 0]);
  });

  it("frees a crashed holder's slot when its lease expires, without anyone's help", async () => {
    const keys = keysFor(policies, "crash");
    const take = (leaseId: string) =>
      store.execute(request(policies, keys, "take", { cost: 0, acquire: true, leaseId }));
    expect((await take("a"))[0]).toBe(1);
    expect((await take("b"))[0]).toBe(1);
    const refused = await take("c");
    expect(refused[0]).toBe(0);
    expect(refused[4 + 10 + 3]).toBeGreaterThan(0); // retryAfterMs of the slot policy
    await sleep(170);
    expect(await client.exists(`${prefix}${keys[2]}`)).toBe(0); // the lease set expired whole
    expect((await take("c"))[0]).toBe(1);
  });

  it("renews all-or-nothing and releases idempotently", async () => {
    const keys = keysFor(policies, "renew");
    const taken = await store.execute(
      request(policies, keys, "take", { acquire: true, leaseId: "a" }),
    );
    const renewed = await store.execute(
      request(policies, keys, "renew", { leaseId: "a", leaseTtlMs: 5_000 }),
    );
    expect(renewed[0]).toBe(1);
    expect(renewed[2]! - renewed[1]!).toBe(5_000);
    expect(renewed[2]).toBeGreaterThan(taken[2]!);
    for (let i = 0; i < 2; i++) {
      const released = await store.execute(request(policies, keys, "release", { leaseId: "a" }));
      expect(released[0]).toBe(1);
      expect(released[4 + 10 + 1]).toBe(2);
    }
    const gone = await store.execute(request(policies, keys, "renew", { leaseId: "a" }));
    expect(gone[0]).toBe(0);
    expect(gone[2]).toBe(0);
  });

  it("migrate() loads the script so the first decision is already an EVALSHA hit", async () => {
    await store.migrate();
    expect(await client.script("EXISTS", DECIDE_SHA)).toEqual([1]);
  });

  it("never reads the client's clock: a client hours off gets the same decisions", async () => {
    const skewedClient = new Redis(REDIS_URL);
    const skewed = createLimiter({
      store: new RedisStore({ client: skewedClient, prefix }),
      policies: [
        { kind: "fixedWindow", name: "minute", limit: 4, window: "1m", align: "firstUse" },
        { kind: "fixedWindow", name: "day", limit: 6, window: "1d", timeZone: "America/New_York" },
        { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: "1h" } },
      ],
      onStoreError: "throw",
    });
    const honest = createLimiter({
      store: new RedisStore({ client, prefix }),
      policies: [
        { kind: "fixedWindow", name: "minute", limit: 4, window: "1m", align: "firstUse" },
        { kind: "fixedWindow", name: "day", limit: 6, window: "1d", timeZone: "America/New_York" },
        { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: "1h" } },
      ],
      onStoreError: "throw",
    });
    const key = `skew-${Date.now()}`;
    // Both clients must decide in one New York day (by Redis TIME): start past a midnight near.
    const [seconds, micros] = await client.time();
    const serverNowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const dayLeftMs = (await honest.peek(key)).policies[1]!.resetAtMs - serverNowMs;
    if (dayLeftMs < 10_000) await sleep(dayLeftMs + 100);
    const a = await honest.take(key, { cost: 2 });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 7 * 3_600_000 });
    try {
      expect(Date.now() - performance.timeOrigin - performance.now()).toBeGreaterThan(
        6 * 3_600_000,
      );
      const b = await skewed.take(key, { cost: 2 });
      const c = await skewed.take(key, { cost: 1 });
      expect(a.allowed && b.allowed).toBe(true);
      expect(c.allowed).toBe(false);
      expect(c.blockedBy).toEqual(["minute"]);
      // The same windows as the honest client's: they come from Redis TIME.
      expect(b.policies[0]!.resetAtMs).toBe(a.policies[0]!.resetAtMs);
      expect(b.policies[1]!.resetAtMs).toBe(a.policies[1]!.resetAtMs);
      expect(Math.abs(b.policies[0]!.resetAtMs - serverNowMs)).toBeLessThan(61_000);
    } finally {
      vi.useRealTimers();
      skewedClient.disconnect();
    }
    const d = await honest.peek(key);
    expect(d.policies[0]!.remaining).toBe(0);
  });

  it("rejects with a SluiceError when the script fails (keys of another type)", async () => {
    const keys = keysFor(policies, "wrongtype");
    const scope = scopeKeyOf(prefix, keys[0]!);
    await client.hset(scope, "x", "1");
    const err = await store.execute(request(policies, keys, "take")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).toMatchObject({ code: "STORE_UNAVAILABLE" });
    await client.del(scope);
  });
});

describe.skipIf(!reachable)("redis store scope keys shared by limiters", () => {
  let client: Redis;
  let prefix: string;
  beforeAll(() => {
    client = new Redis(REDIS_URL);
    prefix = uniquePrefix("shared");
  });
  afterAll(() => client.quit());

  // A day from first use, not the calendar day: the key's life must not depend on the time of
  // day the test runs at.
  const day = compilePolicies([
    { kind: "fixedWindow", name: "day", limit: 5, window: "1d", align: "firstUse" },
  ]);
  const burst = compilePolicies([
    { kind: "tokenBucket", name: "burst", capacity: 2, refill: { tokens: 1, every: 50 } },
  ]);

  it("keeps another limiter's entries, and never cuts the key's life short under them", async () => {
    const store = new RedisStore({ client, prefix });
    const dayKeys = keysFor(day, "u");
    const burstKeys = keysFor(burst, "u");
    const scope = scopeKeyOf(prefix, dayKeys[0]!);
    expect(scopeKeyOf(prefix, burstKeys[0]!)).toBe(scope);
    await store.execute(request(day, dayKeys, "take", { cost: 2 }));
    const dayTtl = await client.pttl(scope);
    expect(dayTtl).toBeGreaterThan(3_600_000);
    await store.execute(request(burst, burstKeys, "take"));
    expect([...(await readScope(client, scope)).keys()].sort()).toEqual(["burst", "day"]);
    // burst is due in 50 ms; the key still lives as long as day's entry.
    expect(await client.pttl(scope)).toBeGreaterThan(dayTtl - 1_000);
    await store.execute(request(burst, burstKeys, "reset"));
    expect([...(await readScope(client, scope)).keys()]).toEqual(["day"]);
    expect((await store.execute(request(day, dayKeys, "peek")))[5]).toBe(3);
    await store.execute(request(day, dayKeys, "reset"));
    expect(await client.exists(scope)).toBe(0);
  });

  it("answers the same through a client without Buffer replies (integers)", async () => {
    const plain = {
      call: client.call.bind(client),
      script: client.script.bind(client),
      isCluster: false,
      options: {},
    } as unknown as Redis;
    const binary = new RedisStore({ client, prefix });
    const integers = new RedisStore({ client: plain, prefix });
    const policies = compilePolicies([
      { kind: "tokenBucket", name: "tb", capacity: 3, refill: { tokens: 1, every: "1h" } },
      { kind: "concurrency", name: "slots", limit: 1, leaseTtl: "1h" },
    ]);
    const keys = keysFor(policies, "int");
    const a = await binary.execute(
      request(policies, keys, "take", { acquire: true, leaseId: "a" }),
    );
    const b = await integers.execute(
      request(policies, keys, "take", { acquire: true, leaseId: "b" }),
    );
    expect(a[0]).toBe(1);
    expect(b[0]).toBe(0); // the slot is held
    expect(b.slice(4, 9)).toEqual([3, 2, b[6], 0, 0]);
    expect(b[6]! - b[1]!).toBeGreaterThan(3_500_000);
    expect(b.slice(9, 14)).toEqual([1, 0, a[2], a[2]! - b[1]!, 1]);
    // A failing decision rejects alone, with its message, in both forms.
    const scope = scopeKeyOf(prefix, keysFor(policies, "bad")[0]!);
    await client.hset(scope, "x", "1");
    for (const store of [binary, integers]) {
      const [bad, good] = await Promise.allSettled([
        store.execute(request(policies, keysFor(policies, "bad"), "peek")),
        store.execute(request(policies, keys, "peek")),
      ]);
      expect(bad).toMatchObject({
        status: "rejected",
        reason: { code: "STORE_UNAVAILABLE", message: expect.stringMatching(/WRONGTYPE/) },
      });
      expect(good).toMatchObject({ status: "fulfilled" });
    }
    await client.del(scope);
  });
});
