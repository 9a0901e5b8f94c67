import pg from "pg";
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
    // A table of this run's own: the shared database's default table may belong to another run.
    const table = `docs_example_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    try {
      expect(await withPostgres(databaseUrl, `docs-example-${process.pid}`, table)).toBe(4);
    } finally {
      const pool = new pg.Pool({ connectionString: databaseUrl });
      await pool.query(`DROP FUNCTION IF EXISTS "public"."${table}_execute"`);
      await pool.query(`DROP FUNCTION IF EXISTS "public"."${table}_now"`);
      await pool.query(`DROP TABLE IF EXISTS "public"."${table}"`);
      await pool.end();
    }
  });
});
