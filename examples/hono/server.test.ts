import { describe, expect, it } from "vitest";
import { start } from "./server.js";

describe("example: Hono", () => {
  it("limits by client IP with draft-7 headers", async () => {
    const app = await start();
    try {
      const res = await fetch(`${app.url}/api/time`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { remaining: number }).remaining).toBe(59);
      expect(res.headers.get("ratelimit")).toMatch(/^limit=60, remaining=59, reset=\d+$/);
      expect(res.headers.get("ratelimit-policy")).toBe("60;w=60");
    } finally {
      await app.close();
    }
  });
});
