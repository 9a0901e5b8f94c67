// What a TypeScript user writes against the published packages, compiled under every module
// resolution the consumer test names (node16, nodenext, bundler, node10), without esModuleInterop.

import { createKeapClient, keapProfiles, parseKeapHeaders } from "@sluice/adapter-keap";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";
import {
  ConfigError,
  createLimiter,
  type Decision,
  isSluiceError,
  type Policy,
  parseTenantConfig,
} from "@sluice/core";
import { clientKey } from "@sluice/http";
import { rateLimit as expressRateLimit } from "@sluice/http/express";
import { rateLimit as honoRateLimit } from "@sluice/http/hono";
import { rateLimit as nodeRateLimit } from "@sluice/http/node";
import { memoryStore } from "@sluice/store-memory";
import { postgresStore } from "@sluice/store-postgres";
import { redisStore } from "@sluice/store-redis";
import type { Express } from "express";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { Pool } from "pg";

const policies: Policy[] = [
  { kind: "tokenBucket", name: "api", capacity: 10, refill: { tokens: 5, every: "1s" } },
];
export const limiter = createLimiter({ store: memoryStore(), policies });
export async function check(key: string): Promise<number> {
  const d: Decision = await limiter.take(key, { cost: 1 });
  return d.allowed ? 0 : d.retryAfterMs;
}
export const onRedis = () => redisStore({ client: new Redis({ lazyConnect: true }) });
export const onPostgres = () => postgresStore({ pool: new Pool() });
export const keap = () =>
  createKeapClient({ profile: "pat", store: memoryStore(), identity: { tenant: "t", token: "p" } });
export const profiles = Object.keys(keapProfiles);
export const observations = parseKeapHeaders(new Headers());
export const simulator = startKeapSimulator;
export const config = () => parseTenantConfig({ tenants: {} }, { profiles: keapProfiles });
export function describeError(e: unknown): string {
  if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`).join("\n");
  return isSluiceError(e) ? e.code : String(e);
}
// Each framework's middleware, with the decision typed on its request object (Fastify's in
// fastify.ts). Express by its types only: without esModuleInterop its export needs require.
export function onExpress(app: Express): void {
  app.use(expressRateLimit({ limiter, key: (req) => req.get("x-api-key") ?? undefined }));
  app.get("/", (req, res) => {
    res.json({ remaining: req.rateLimit?.remaining });
  });
}
export const onHono = new Hono()
  .use(honoRateLimit({ limiter }))
  .get("/", (c) => c.json({ remaining: c.get("rateLimit")?.remaining ?? null }));
const limitedNode = nodeRateLimit({
  limiter,
  key: (req) => clientKey(req.socket.remoteAddress ?? ""),
});
export async function onNode(...args: Parameters<typeof limitedNode>): Promise<string> {
  if (await limitedNode(...args)) return "answered";
  return `remaining ${args[0].rateLimit?.remaining}`;
}
