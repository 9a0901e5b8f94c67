import { readFileSync } from "node:fs";
import {
  type CompiledPolicy,
  compilePolicies,
  evaluate,
  KINDS,
  limitInForce,
  type PolicyStateRecord,
  type StoreRequest,
} from "@sluice/core/store";
import { installTestClock, type TestClock } from "@sluice/store-postgres/testing";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStore } from "../src/index.js";
import { stateColumns } from "../src/sql/layout.js";
import { dropTable, makePool, runPostgres, uniqueTable } from "./helpers.js";

/** Columns the previous version wrote each kind's state to (its migrate.ts documented them). */
const PREVIOUS_LAYOUT = {
  tokenBucket: { level: "a", levelAtMs: "b", learnedLimit: "ll", learnedLimitUntilMs: "lu" },
  pool: { level: "a", anchorMs: "b", learnedLimit: "ll", learnedLimitUntilMs: "lu" },
  fixedWindow: {
    count: "a",
    startMs: "b",
    endMs: "c",
    learnedLimit: "ll",
    learnedLimitUntilMs: "lu",
  },
  slidingWindow: { slots: "xs", counts: "ys", learnedLimit: "ll", learnedLimitUntilMs: "lu" },
  concurrency: { leases: "ids,ys", learnedLimit: "ll", learnedLimitUntilMs: "lu" },
} as const;

/**
 * Buckets and pools now keep what was consumed where the level was, and the refill period it is
 * counted in in column c, which the previous version left NULL: that is how a row it wrote is told
 * apart (and read as the level it held).
 */
const CHANGED = {
  tokenBucket: { level: "consumed", levelAtMs: "consumedAtMs", everyMs: "everyMs" },
  pool: { level: "consumed", anchorMs: "anchorMs", everyMs: "everyMs" },
} as const;

describe("state layout", () => {
  it("derives from the kinds table the columns the previous version wrote", () => {
    for (const spec of Object.values(KINDS)) {
      const derived = Object.fromEntries(
        stateColumns(spec).map((c) => [c.field.name, c.columns.join(",")]),
      );
      const renamed: Record<string, string> =
        spec.kind === "tokenBucket" || spec.kind === "pool" ? CHANGED[spec.kind] : {};
      const previous = Object.fromEntries(
        Object.entries(PREVIOUS_LAYOUT[spec.kind]).map(([f, c]) => [renamed[f] ?? f, c]),
      );
      const added = Object.keys(derived).filter((f) => !(f in previous));
      expect(added).toEqual(spec.kind in CHANGED ? ["everyMs"] : []);
      expect(added.map((f) => derived[f])).toEqual(spec.kind in CHANGED ? ["c"] : []);
      for (const f of added) delete derived[f];
      expect(derived).toEqual(previous);
    }
  });
});

const HOUR = 3_600_000;
const policies = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: "1m" } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: "1m" } },
  { kind: "fixedWindow", name: "fw", limit: 6, window: "1h" },
  { kind: "fixedWindow", name: "fu", limit: 3, window: "1h", align: "firstUse" },
  { kind: "slidingWindow", name: "sw", limit: 5, window: "1h", precision: "1m" },
  { kind: "concurrency", name: "conc", limit: 2, leaseTtl: "1h" },
]);
// The previous version's encoding of these policies: kind, limit, p1, p2, p3.
const PREVIOUS_POLICIES = [
  [1, 5, 1, 60_000, 0],
  [2, 4, 1, 60_000, 0],
  [3, 6, HOUR, 0, 0],
  [3, 3, HOUR, 1, 0],
  [4, 5, HOUR, 60_000, 0],
  [5, 2, HOUR, 0, 0],
].flat();

const int = (v: string | null): number => Number(v ?? 0);
const ints = (v: readonly string[] | null): number[] => (v ?? []).map(Number);

/** A state row as pg returns it (bigints as strings). */
interface Row {
  readonly key: string;
  readonly due_ms: string;
  readonly ll: string;
  readonly lu: string;
  readonly a: string | null;
  readonly b: string | null;
  readonly c: string | null;
  readonly xs: string[] | null;
  readonly ys: string[] | null;
  readonly ids: string[] | null;
}

/**
 * A row as the previous version wrote it, read back with its layout. A bucket's or a pool's level
 * becomes what it consumed under the limit in force at `nowMs`, as this version reads it.
 */
function recordOf(policy: CompiledPolicy, row: Row, nowMs: number): PolicyStateRecord {
  const base = {
    learnedLimit: int(row.ll),
    learnedLimitUntilMs: int(row.lu),
    dueMs: int(row.due_ms),
  };
  const limit = limitInForce(policy, base, nowMs);
  switch (policy.kind) {
    case "tokenBucket": {
      const everyMs = policy.refillEveryMs;
      const consumed = Math.max(0, limit * everyMs - int(row.a));
      return { ...base, consumed, consumedAtMs: int(row.b), everyMs };
    }
    case "pool": {
      const consumed = Math.max(0, limit - int(row.a));
      return { ...base, consumed, anchorMs: int(row.b), everyMs: policy.refillEveryMs };
    }
    case "fixedWindow":
      return { ...base, count: int(row.a), startMs: int(row.b), endMs: int(row.c) };
    case "slidingWindow":
      return { ...base, slots: ints(row.xs), counts: ints(row.ys) };
    default: {
      const ids: string[] = row.ids ?? [];
      const expiries = ints(row.ys);
      return { ...base, leases: new Map(ids.map((id, i) => [id, expiries[i]!])) };
    }
  }
}

const request = (fields: Partial<StoreRequest>, keys: readonly string[]): StoreRequest => ({
  op: "take",
  policies,
  keys,
  partition: "upgrade",
  cost: 1,
  acquire: false,
  leaseId: undefined,
  leaseTtlMs: undefined,
  observations: undefined,
  learnedLimitTtlMs: HOUR,
  windowBounds: undefined,
  ...fields,
});

describe.runIf(runPostgres)("a table the previous version migrated and wrote", () => {
  const table = uniqueTable("sluice_test_upgrade");
  const pool = makePool({ max: 2 });
  let clock: TestClock | undefined;
  afterAll(async () => {
    await clock?.uninstall();
    await dropTable(pool, table);
    await pool.end();
  });

  it("keeps deciding from the state it holds after migrate() installs this version", async () => {
    const previous = readFileSync(
      new URL("./fixtures/previous-version.sql", import.meta.url),
      "utf8",
    )
      .replaceAll("sluice_previous_version", table)
      .split("\n-- ;\n");
    for (const sql of previous) await pool.query(sql);

    // The previous version's function: a take that acquires lease L1 at cost 2, then a reconcile
    // that teaches the pool a limit of 3, in its own argument format (op codes 1 and 4).
    const keys = policies.map((_, i) => `up:${i}`);
    const obs = policies.flatMap((_, i) => (i === 1 ? [1, 3, null] : [null, null, null]));
    const old = await pool.query<{ r: string }>(
      `SELECT "public"."${table}_execute"($1::bigint[], $2::int[], $3::int[], $4::text[], $5::int[], $6::int[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::boolean) AS r`,
      [
        PREVIOUS_POLICIES,
        [0, 0],
        [6, 6],
        keys,
        [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6],
        [1, 4],
        [2, 0],
        ["L1", null],
        [null, null],
        [HOUR, HOUR],
        obs,
        [],
        true,
      ],
    );
    const oldNow = Number(old.rows[0]!.r.split(",")[1]);
    const rows = await pool.query<Row>(`SELECT * FROM "public"."${table}" ORDER BY key`);
    expect(rows.rows.map((r) => r.key)).toEqual(keys);
    const firstNowMs = oldNow + 5 + 7_000;
    const model = new Map<string, PolicyStateRecord>(
      rows.rows.map((r, i) => [r.key, recordOf(policies[i]!, r, firstNowMs)]),
    );

    await postgresStore({ pool, table }).migrate();
    const store = postgresStore({ pool, table });
    clock = await installTestClock({ pool, table });
    const steps: Partial<StoreRequest>[] = [
      { op: "peek", cost: 0 },
      { op: "take", cost: 1, acquire: true, leaseId: "L2" },
      { op: "take", cost: 1, acquire: true, leaseId: "L3" },
      { op: "release", cost: 0, leaseId: "L1" },
      { op: "refund", cost: 1 },
      { op: "take", cost: 2 },
    ];
    let now = oldNow + 5;
    for (const fields of steps) {
      now += 7_000;
      await clock.set(now);
      const r = request(fields, keys);
      const got = await store.execute(r);
      const want = evaluate(
        r,
        keys.map((k) => model.get(k)),
        now,
      );
      expect(got).toEqual(want.result);
      if (want.write) {
        keys.forEach((k, i) => {
          const s = want.states[i];
          if (s === undefined) model.delete(k);
          else model.set(k, s);
        });
      }
    }
    // The pool still answers under the limit the previous version learned.
    expect((await store.execute(request({ op: "peek", cost: 0 }, keys)))[4 + 5]).toBe(3);
    await store.close();
  });
});
