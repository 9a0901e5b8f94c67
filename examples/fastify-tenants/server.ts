// Fastify with per-tenant limits from a JSON file: the tenant comes from the `x-tenant` header,
// its limiter from the registry (defaults for tenants not in the file), reloaded on SIGHUP.
// Run: npx tsx examples/fastify-tenants/server.ts
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createTenantRegistry } from "@sluice/core";
import { rateLimit } from "@sluice/http/fastify";
import { memoryStore } from "@sluice/store-memory";
import Fastify from "fastify";

const CONFIG = new URL("./tenants.json", import.meta.url);

export async function start(options: { port?: number } = {}) {
  const registry = createTenantRegistry({
    config: JSON.parse(readFileSync(CONFIG, "utf8")),
    store: memoryStore(), // or redisStore / postgresStore to share limits between processes
  });
  const tenantOf = (headers: Record<string, unknown>) => String(headers["x-tenant"] ?? "anonymous");

  const app = Fastify();
  await app.register(rateLimit, {
    limiter: (request) => registry.limiter(tenantOf(request.headers)),
    key: (request) => tenantOf(request.headers), // each tenant's state is its own
  });
  app.get("/work", async (request) => ({
    tenant: tenantOf(request.headers),
    remaining: request.rateLimit?.remaining,
  }));
  app.get("/health", { config: { rateLimit: false } }, async () => "ok");

  const reload = () => registry.update(JSON.parse(readFileSync(CONFIG, "utf8")));
  process.on("SIGHUP", reload);
  const url = await app.listen({ port: options.port ?? 0, host: "127.0.0.1" });
  return {
    url,
    registry,
    async close() {
      process.off("SIGHUP", reload);
      await app.close();
      registry.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}`);
}
