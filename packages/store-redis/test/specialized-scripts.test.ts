import { ConfigError, createLimiter, type Policy } from "@sluice/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_FAST_POLICIES, withFastTake } from "../src/fast-take.js";
import { DECIDE_LUA, DECIDE_SHA, decideScript, RedisStore } from "../src/index.js";
import { deleteKeys, REDIS_URL, redisReachable, uniquePrefix } from "./helpers.js";

const reachable = await redisReachable();

type Eval = (...args: (string | number)[]) => Promise<unknown>;

const tb = (name: string): Policy => ({
  kind: "tokenBucket",
  name,
  capacity: 5,
  refill: { tokens: 1, every: "1h" },
});
const fw = (name: string): Policy => ({ kind: "fixedWindow", name, limit: 4, window: "1h" });
const sw = (name: string): Policy => ({ kind: "slidingWindow", name, limit: 3, window: "1h" });

describe("redisStore specializedScripts option", () => {
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  it.each([-1, 1.5, Number.NaN, "4"])("refuses %s, naming the field", (value) => {
    let error: unknown;
    try {
      new RedisStore({ client, specializedScripts: value as number });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]!.path).toBe("specializedScripts");
  });
});

describe.skipIf(!reachable && !process.env.CI)("redis store: scripts per sequence of kinds", () => {
  let client: Redis;
  /** SHA1 of every EVALSHA the store sent, in order. */
  const sent: string[] = [];
  beforeAll(() => {
    client = new Redis(REDIS_URL);
    // ioredis has evalshaBuffer at runtime; its typings omit it.
    const buffers = client as unknown as { evalshaBuffer: Eval };
    const real = buffers.evalshaBuffer.bind(client);
    buffers.evalshaBuffer = (sha, ...rest) => {
      sent.push(String(sha));
      return real(sha, ...rest);
    };
  });
  const prefixes: string[] = [];
  const prefix = (tag: string) => {
    const p = uniquePrefix(tag);
    prefixes.push(p);
    return p;
  };
  afterAll(async () => {
    for (const p of prefixes) await deleteKeys(client, p);
    await client.quit();
  });

  const kindsOf = (sha: string) =>
    /Generated \(fast-take\.ts\) for the kinds ([\d, ]+):/.exec(decideScript(sha) ?? "")?.[1] ??
    (sha === DECIDE_SHA ? "decide.lua" : "unknown");

  it("gives the first kinds sequences scripts of their own, the rest decide.lua, in one tick", async () => {
    const store = new RedisStore({ client, prefix: prefix("spec"), specializedScripts: 1 });
    const limiter = (policies: Policy[]) =>
      createLimiter({ store, policies, onStoreError: "throw" });
    const first = limiter([tb("a"), fw("b")]);
    const second = limiter([sw("c")]);
    const withLeases = limiter([
      fw("d"),
      { kind: "concurrency", name: "e", limit: 2, leaseTtl: "1m" },
    ]);
    sent.length = 0;
    // Five takes of each, issued in the same tick: three scripts, answers cut apart correctly.
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => [
        first.take("u"),
        second.take("u"),
        withLeases.take("u"),
      ]).flat(),
    );
    const allowed = (i: number) => answers.filter((_, k) => k % 3 === i).map((d) => d.allowed);
    expect(allowed(0)).toEqual([true, true, true, true, false]);
    expect(allowed(1)).toEqual([true, true, true, false, false]);
    expect(allowed(2)).toEqual([true, true, true, true, false]);
    expect(answers[0]!.policies.map((p) => [p.name, p.limit, p.remaining])).toEqual([
      ["a", 5, 4],
      ["b", 4, 3],
    ]);
    expect(new Set(sent.map(kindsOf))).toEqual(new Set(["1, 3", "decide.lua"]));
    // One script call per script for the tick's 15 decisions.
    expect(sent).toHaveLength(2);
  });

  it("sends every decision to decide.lua with specializedScripts 0", async () => {
    const store = new RedisStore({ client, prefix: prefix("spec0"), specializedScripts: 0 });
    const limiter = createLimiter({ store, policies: [tb("a"), sw("b")], onStoreError: "throw" });
    sent.length = 0;
    const answers = await Promise.all(Array.from({ length: 4 }, () => limiter.take("u")));
    expect(answers.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(sent.map(kindsOf)).toEqual(["decide.lua"]);
  });

  it("recovers a flushed script with EVAL, and migrate() loads the ones it has made", async () => {
    const store = new RedisStore({ client, prefix: prefix("flush") });
    const limiter = createLimiter({ store, policies: [sw("a"), tb("b")], onStoreError: "throw" });
    expect((await limiter.take("u")).allowed).toBe(true);
    const sha = sent.at(-1)!;
    expect(kindsOf(sha)).toBe("4, 1");
    await client.script("FLUSH");
    const after = await limiter.take("u");
    expect(after.allowed).toBe(true);
    expect(after.policies[0]!.remaining).toBe(1);
    await client.script("FLUSH");
    await store.migrate();
    expect(await client.script("EXISTS", DECIDE_SHA, sha)).toEqual([1, 1]);
  });

  it("compiles the generated code for the longest layouts of every kind", async () => {
    for (const kind of [1, 2, 3, 4]) {
      const text = withFastTake(DECIDE_LUA, Array(MAX_FAST_POLICIES).fill(kind));
      await expect(client.script("LOAD", text)).resolves.toMatch(/^[0-9a-f]{40}$/);
    }
    // One more policy than that: decide.lua's own loop.
    const store = new RedisStore({ client, prefix: prefix("long") });
    const policies = Array.from({ length: MAX_FAST_POLICIES + 1 }, (_, i) => fw(`w${i}`));
    const limiter = createLimiter({ store, policies, onStoreError: "throw" });
    sent.length = 0;
    expect((await limiter.take("u")).allowed).toBe(true);
    expect(sent.map(kindsOf)).toEqual(["decide.lua"]);
  });
});
