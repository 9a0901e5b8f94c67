// Hono on Node: 60 requests a minute per client IP, in a sliding window.
// Run: npx tsx examples/hono/server.ts
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import { createLimiter } from "@sluice/core";
import { rateLimit } from "@sluice/http/hono";
import { memoryStore } from "@sluice/store-memory";
import { Hono } from "hono";

export function createApp() {
  const limiter = createLimiter({
    store: memoryStore(),
    policies: [{ kind: "slidingWindow", name: "minute", limit: 60, window: "1m" }],
  });
  const app = new Hono();
  app.use("/api/*", rateLimit({ limiter, headers: "draft-7" }));
  app.get("/api/time", (c) =>
    c.json({ now: Date.now(), remaining: c.get("rateLimit")?.remaining }),
  );
  return app;
}

export async function start(options: { port?: number } = {}) {
  const app = createApp();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: "127.0.0.1" }, () =>
      resolve(s),
    );
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}`);
}
