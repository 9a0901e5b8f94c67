import { describe, expect, it } from "vitest";
import { start } from "./server.js";

describe("example: Fastify with per-tenant JSON config", () => {
  it("limits each tenant by its own policies", async () => {
    const app = await start();
    try {
      const burst = (tenant: string, n: number) =>
        Promise.all(
          Array.from({ length: n }, () =>
            fetch(`${app.url}/work`, { headers: { "x-tenant": tenant } }).then(async (r) => {
              await r.arrayBuffer();
              return r.status;
            }),
          ),
        );
      // Buckets refill while the requests run, so count with a margin.
      const acme = (await burst("acme", 40)).filter((s) => s === 200).length;
      expect(acme).toBeGreaterThanOrEqual(20);
      expect(acme).toBeLessThan(40);
      const other = (await burst("initech", 20)).filter((s) => s === 200).length; // the defaults
      expect(other).toBeGreaterThanOrEqual(5);
      expect(other).toBeLessThan(12);
      const res = await fetch(`${app.url}/work`, { headers: { "x-tenant": "globex" } });
      expect(await res.json()).toEqual({ tenant: "globex", remaining: 1 });
      expect((await fetch(`${app.url}/health`)).headers.get("ratelimit")).toBeNull();
    } finally {
      await app.close();
    }
  });
});
