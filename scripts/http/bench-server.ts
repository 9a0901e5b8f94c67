// One server of `npm run bench:http`, in its own process so the load generator does not share its
// event loop. argv: <row> <redis url> <prefix>. Prints the port, then serves until stdin ends.
import type { AddressInfo } from "node:net";
import fastifyRateLimit from "@fastify/rate-limit";
import { createLimiter, type Store } from "@sluice/core";
import { rateLimit as sluiceExpress } from "@sluice/http/express";
import { rateLimit as sluiceFastify } from "@sluice/http/fastify";
import { memoryStore } from "@sluice/store-memory";
import { redisStore } from "@sluice/store-redis";
import express from "express";
import { rateLimit as expressRateLimit } from "express-rate-limit";
import Fastify from "fastify";
import { Redis } from "ioredis";

export const ROWS = [
  "fastify bare",
  "fastify + @sluice/http (memory)",
  "fastify + @fastify/rate-limit (memory)",
  "fastify + @sluice/http (redis)",
  "fastify + @fastify/rate-limit (redis)",
  "express bare",
  "express + @sluice/http (memory)",
  "express + express-rate-limit (memory)",
] as const;
export type Row = (typeof ROWS)[number];

// Far above what a run can send: every request is admitted and charged.
const HUGE = 1_000_000_000;

function sluiceLimiter(store: Store, prefix: string) {
  return createLimiter({
    store,
    prefix,
    policies: [
      { kind: "tokenBucket", name: "api", capacity: HUGE, refill: { tokens: HUGE, every: "1m" } },
    ],
  });
}

async function main() {
  const [row = "", redisUrl = "redis://127.0.0.1:6379", prefix = "http-bench"] =
    process.argv.slice(2);
  // The other libraries run their published JavaScript; sluice must too, not its sources.
  const sluice = import.meta.resolve("@sluice/http/fastify");
  if (!sluice.includes("/dist/")) {
    throw new Error(`@sluice/http resolves to ${sluice}: run with scripts/http/tsconfig.json`);
  }
  const redis = row.includes("(redis)") ? new Redis(redisUrl) : undefined;
  let port: number;
  if (row.startsWith("fastify")) {
    const app = Fastify();
    if (row === "fastify + @sluice/http (memory)") {
      await app.register(sluiceFastify, { limiter: sluiceLimiter(memoryStore(), prefix) });
    } else if (row === "fastify + @sluice/http (redis)") {
      await app.register(sluiceFastify, {
        limiter: sluiceLimiter(redisStore({ client: redis! }), `${prefix}-sluice`),
      });
    } else if (row === "fastify + @fastify/rate-limit (memory)") {
      await app.register(fastifyRateLimit, { max: HUGE, timeWindow: 60_000 });
    } else if (row === "fastify + @fastify/rate-limit (redis)") {
      await app.register(fastifyRateLimit, {
        max: HUGE,
        timeWindow: 60_000,
        redis: redis!,
        nameSpace: `${prefix}-fastify-`,
      });
    } else if (row !== "fastify bare") throw new Error(`unknown row ${row}`);
    app.get("/", async () => ({ hello: "world" }));
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as AddressInfo).port;
  } else {
    const app = express();
    if (row === "express + @sluice/http (memory)") {
      app.use(sluiceExpress({ limiter: sluiceLimiter(memoryStore(), prefix) }));
    } else if (row === "express + express-rate-limit (memory)") {
      app.use(expressRateLimit({ limit: HUGE, windowMs: 60_000 }));
    } else if (row !== "express bare") throw new Error(`unknown row ${row}`);
    app.get("/", (_req, res) => {
      res.json({ hello: "world" });
    });
    port = await new Promise<number>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port));
    });
  }
  process.stdout.write(`${port}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => {
    redis?.disconnect();
    process.exit(0);
  });
}

if (process.argv[1]?.endsWith("bench-server.ts")) await main();
