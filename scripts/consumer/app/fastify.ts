// The Fastify plugin of @sluice/http, typed. Its own file: under node10 resolution Fastify's
// types (pino's) need esModuleInterop, which packages/http/README.md says; the other files compile
// without it.
import { createLimiter } from "@sluice/core";
import { rateLimit } from "@sluice/http/fastify";
import { memoryStore } from "@sluice/store-memory";
import type { FastifyInstance } from "fastify";

const limiter = createLimiter({
  store: memoryStore(),
  policies: [{ kind: "fixedWindow", name: "daily", limit: 1000, window: "1d" }],
});
export async function onFastify(app: FastifyInstance): Promise<void> {
  await app.register(rateLimit, { limiter, key: (request) => request.ip });
  app.get("/", async (request) => ({ remaining: request.rateLimit?.remaining }));
  app.get("/health", { config: { rateLimit: false } }, async () => "ok");
}
