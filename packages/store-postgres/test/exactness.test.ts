import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresStore } from "../src/index.js";
import { dropTable, makePool, runPostgres, uniqueTable } from "./helpers.js";

const TABLE = uniqueTable("sluice_test_exactness");
const CHILD = fileURLToPath(new URL("./fixtures/exactness-child.mjs", import.meta.url));
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const run = promisify(execFile);

interface ChildReport {
  fixedWindow: number;
  pool: number;
  tokenBucket: number;
  holds: [number, number][];
}

describe.runIf(runPostgres)("exactness across processes", () => {
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = makePool();
    await dropTable(pool, TABLE);
    await postgresStore({ pool, table: TABLE }).migrate();
  });
  afterAll(async () => {
    await dropTable(pool, TABLE);
    await pool.end();
  });

  it("4 processes x 32 in flight admit exactly the limit, and a semaphore of 5 never has 6 holders", async () => {
    const tag = `r${Date.now()}`;
    const outs = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ["--import", "tsx", CHILD, TABLE, tag], {
          cwd: ROOT,
          timeout: 60_000,
        }),
      ),
    );
    const reports = outs.map((o) => JSON.parse(o.stdout.trim()) as ChildReport);
    const sum = (f: (r: ChildReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    expect(sum((r) => r.fixedWindow)).toBe(500);
    expect(sum((r) => r.pool)).toBe(300);
    expect(sum((r) => r.tokenBucket)).toBe(200);

    // Sweep over hold intervals on the store clock; a release at t frees the slot before an
    // acquisition at t (the acquisition read the clock after the release committed).
    const events = reports
      .flatMap((r) => r.holds)
      .flatMap(([from, to]) => [
        [from, 1],
        [to, -1],
      ])
      .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
    let holders = 0;
    let most = 0;
    for (const [, d] of events) {
      holders += d!;
      most = Math.max(most, holders);
    }
    expect(sum((r) => r.holds.length)).toBeGreaterThan(20);
    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBe(5);
  }, 90_000);
});
