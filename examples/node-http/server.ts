// A plain node:http server: 2 uploads in flight per client and 100 a minute, queued for up to
// 5 s rather than refused. Run: npx tsx examples/node-http/server.ts
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createLimiter } from "@sluice/core";
import { rateLimit } from "@sluice/http/node";
import { memoryStore } from "@sluice/store-memory";

export async function start(options: { port?: number; workMs?: number } = {}) {
  const limiter = createLimiter({
    store: memoryStore(),
    policies: [
      { kind: "concurrency", name: "inflight", limit: 2, leaseTtl: "1m" },
      { kind: "fixedWindow", name: "minute", limit: 100, window: "1m" },
    ],
  });
  const limited = rateLimit({ limiter, wait: { maxWaitMs: 5000 } });
  const server = createServer(async (req, res) => {
    if (await limited(req, res)) return; // answered already (429 or 503)
    await new Promise((r) => setTimeout(r, options.workMs ?? 100)); // the work
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ done: true, remaining: req.rateLimit?.remaining }));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}`);
}
