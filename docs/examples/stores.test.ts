import { describe, expect, it } from "vitest";
import { withPostgres, withRedis } from "./stores.js";

// The local services every store suite uses (see the README); never skipped.
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

describe("the getting-started store examples", () => {
  it("takes one token on Redis", async () => {
    expect(await withRedis(redisUrl, `docs-example-${process.pid}`)).toBe(4);
  });

  it("takes one token on PostgreSQL", async () => {
    expect(await withPostgres(databaseUrl, `docs-example-${process.pid}`)).toBe(4);
  });
});
