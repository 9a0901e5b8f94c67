import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { start } from "./server.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `example-express-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function reachable() {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return true;
  } catch {
    if (process.env.CI) throw new Error(`Redis at ${REDIS_URL} is unreachable`);
    return false;
  } finally {
    probe.disconnect();
  }
}

describe.skipIf(!(await reachable()))("example: Express with Redis", () => {
  afterAll(async () => {
    const client = new Redis(REDIS_URL);
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  it("gives each API key 10 a second, with draft-8 headers", async () => {
    const app = await start({ redisUrl: REDIS_URL, prefix });
    try {
      const as = (key: string) => fetch(`${app.url}/hello`, { headers: { "x-api-key": key } });
      const first = await as("key-1");
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ hello: "world", remaining: 9 });
      expect(first.headers.get("ratelimit-policy")).toBe(
        '"burst";q=10;w=1, "daily";q=1000;w=86400',
      );
      // The bucket refills one token every 100 ms while these run: most of 30 are refused.
      const rest = await Promise.all(Array.from({ length: 30 }, () => as("key-1")));
      const refused = rest.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThanOrEqual(15);
      expect(refused[0]!.headers.get("retry-after")).toBe("1");
      expect((await as("key-2")).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
