import { describe, expect, it } from "vitest";
import { start } from "./server.js";

describe("example: node:http", () => {
  it("runs two at a time and queues the rest", async () => {
    const app = await start({ workMs: 100 });
    try {
      const t0 = Date.now();
      const all = await Promise.all(Array.from({ length: 4 }, () => fetch(`${app.url}/upload`)));
      expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
      expect(all[0]!.headers.get("ratelimit-policy")).toBe('"minute";q=100;w=60');
    } finally {
      await app.close();
    }
  });
});
