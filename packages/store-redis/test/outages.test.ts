import { setTimeout as sleep } from "node:timers/promises";
import { createLimiter, type Decision, type Policy } from "@sluice/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/index.js";
import { freePort, OwnRedis } from "./helpers.js";

const policies: Policy[] = [{ kind: "fixedWindow", name: "fw", limit: 1_000, window: "1h" }];

describe("Redis outages: nothing is charged after the caller was answered", () => {
  let server: OwnRedis;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    server = new OwnRedis(await freePort());
    await server.start();
  });
  afterAll(() => {
    server?.stop();
    process.off("unhandledRejection", onUnhandled);
  });

  /** ioredis defaults (offline queue on, 20 retries per request), a fast reconnect. */
  function client(): Redis {
    const c = new Redis({ port: server.port, host: "127.0.0.1", retryStrategy: () => 100 });
    c.on("error", () => {});
    return c;
  }

  it("an offline queue replayed after a kill -9 and a restart charges nothing", async () => {
    const c = client();
    const limiter = createLimiter({
      store: new RedisStore({ client: c, prefix: `out${process.pid}a` }),
      policies,
      timeoutMs: 300,
      breaker: false,
    });
    expect((await limiter.take("k")).allowed).toBe(true);
    server.kill();
    await sleep(50);
    const during: Decision[] = await Promise.all(
      Array.from({ length: 40 }, () => limiter.take("k")),
    );
    expect(during.every((d) => d.degraded === true)).toBe(true);
    await sleep(700);
    await server.start();
    // Let the client reconnect and replay its queue.
    for (let i = 0; i < 50 && c.status !== "ready"; i++) await sleep(50);
    await sleep(300);
    const after = await limiter.peek("k");
    expect(after.degraded).toBeUndefined();
    // The restarted server started empty: any replayed take would show here.
    expect(after.policies[0]!.remaining).toBe(1_000);
    c.disconnect();
  }, 20_000);

  it("takes that timed out while the server was paused (SIGSTOP) are not charged after SIGCONT", async () => {
    const c = client();
    const limiter = createLimiter({
      store: new RedisStore({ client: c, prefix: `out${process.pid}b` }),
      policies,
      timeoutMs: 300,
      breaker: false,
    });
    for (let i = 0; i < 3; i++) expect((await limiter.take("k")).allowed).toBe(true);
    server.signal("SIGSTOP");
    const during = await Promise.all(Array.from({ length: 30 }, () => limiter.take("k")));
    expect(during.every((d) => d.degraded === true)).toBe(true);
    await sleep(500);
    server.signal("SIGCONT");
    await sleep(300);
    const after = await limiter.peek("k");
    expect(after.degraded).toBeUndefined();
    expect(after.policies[0]!.remaining).toBe(997);
    c.disconnect();
  }, 20_000);

  it("with the breaker on, answers within milliseconds while the server is down and recovers", async () => {
    const c = client();
    const ups: number[] = [];
    const limiter = createLimiter({
      store: new RedisStore({ client: c, prefix: `out${process.pid}c` }),
      policies,
      timeoutMs: 300,
      breaker: { failures: 3, probeMs: 200 },
    });
    limiter.on("storeUp", (e) => ups.push(e.downMs));
    expect((await limiter.take("k")).allowed).toBe(true);
    server.signal("SIGSTOP");
    for (let i = 0; i < 3; i++) await limiter.take("k");
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const d = await limiter.take("k");
      latencies.push(performance.now() - t0);
      expect(d).toMatchObject({ allowed: false, degraded: true });
    }
    latencies.sort((a, b) => a - b);
    expect(latencies[Math.floor(latencies.length * 0.99)]!).toBeLessThan(20);
    server.signal("SIGCONT");
    const back = Date.now();
    let d = await limiter.take("k");
    while (d.degraded && Date.now() - back < 3_000) {
      await sleep(10);
      d = await limiter.take("k");
    }
    expect(d.degraded).toBeUndefined();
    expect(Date.now() - back).toBeLessThan(200 + 500);
    expect(ups).toHaveLength(1);
    // Only the two admitted takes were charged: the probes were peeks, the rest never sent.
    expect((await limiter.peek("k")).policies[0]!.remaining).toBe(998);
    c.disconnect();
  }, 20_000);

  it("rejects a key of the wrong type (WRONGTYPE) whatever onStoreError says", async () => {
    const c = client();
    const prefix = `out${process.pid}d`;
    for (const onStoreError of ["deny", "allow"] as const) {
      const limiter = createLimiter({
        store: new RedisStore({ client: c, prefix }),
        policies,
        onStoreError,
      });
      await c.del(`${prefix}:{k}`);
      await limiter.take("k");
      const keys = await c.keys(`${prefix}*`);
      for (const k of keys) {
        await c.del(k);
        await c.lpush(k, "x");
      }
      await expect(limiter.take("k")).rejects.toMatchObject({
        code: "STORE_UNAVAILABLE",
        retryable: false,
        message: expect.stringContaining("WRONGTYPE"),
      });
      for (const k of keys) await c.del(k);
    }
    c.disconnect();
    await sleep(50);
    expect(unhandled).toEqual([]);
  });
});
