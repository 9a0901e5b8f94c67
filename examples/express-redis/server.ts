// Express + Redis: each API key gets 10 requests a second and 1,000 a day, shared by every
// process that uses the same Redis. Run: REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/express-redis/server.ts
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createLimiter } from "@sluice/core";
import { rateLimit } from "@sluice/http/express";
import { redisStore } from "@sluice/store-redis";
import express from "express";
import { Redis } from "ioredis";

export async function start(options: { port?: number; redisUrl?: string; prefix?: string } = {}) {
  const client = new Redis(options.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const limiter = createLimiter({
    store: redisStore({ client }),
    prefix: options.prefix ?? "api",
    policies: [
      { kind: "tokenBucket", name: "burst", capacity: 10, refill: { tokens: 10, every: "1s" } },
      { kind: "fixedWindow", name: "daily", limit: 1000, window: "1d" },
    ],
    onStoreError: "allow", // an outage of Redis should not take the API down
  });

  const app = express();
  app.use(
    rateLimit({
      limiter,
      key: (req) => req.get("x-api-key") ?? undefined, // anonymous callers: by IP
      refund: (status) => status >= 500, // our failures do not count against the caller
    }),
  );
  app.get("/hello", (req, res) => {
    res.json({ hello: "world", remaining: req.rateLimit?.remaining });
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(options.port ?? 0, "127.0.0.1", () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      client.disconnect();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}`);
}
