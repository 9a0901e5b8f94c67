import {
  compilePolicies,
  evaluate,
  type PolicyStateRecord,
  type StoreRequest,
} from "@sluice/core/store";
import { describe, expect, it } from "vitest";
import { keysFor, readScope, redisReachable, request, scopeKeyOf } from "./helpers.js";
import { useTestClockStore } from "./test-clock.js";

const reachable = await redisReachable();
const HOUR = 3_600_000;

const policies = compilePolicies([
  { kind: "tokenBucket", name: "tb", capacity: 5, refill: { tokens: 1, every: "1m" } },
  { kind: "pool", name: "pool", capacity: 4, refill: { tokens: 1, every: "1m" } },
]);

/**
 * An entry as the previous version wrote it: name, kind code, due, then a 32-byte payload of
 * four doubles (a bucket: level in token-ms, levelAtMs; a pool: level in tokens, anchorMs; then
 * learnedLimit, learnedLimitUntilMs).
 */
function previousEntry(name: string, code: number, dueMs: number, payload: number[]): Buffer {
  const head = Buffer.alloc(4 + name.length + 1 + 8 + 4);
  head.writeUInt32LE(name.length, 0);
  head.write(name, 4, "utf8");
  head.writeUInt8(code, 4 + name.length);
  head.writeDoubleLE(dueMs, 5 + name.length);
  head.writeUInt32LE(32, 13 + name.length);
  const body = Buffer.alloc(32);
  for (const [i, v] of payload.entries()) body.writeDoubleLE(v, 8 * i);
  return Buffer.concat([head, body]);
}

describe.skipIf(!reachable)("entries the previous version wrote", () => {
  const ctx = useTestClockStore();

  it("are read as the level they held under the limit in force, then rewritten", async () => {
    const t0 = ctx.now;
    const keys = keysFor(policies, "previous");
    // A bucket holding 2 of 5 tokens since t0; a pool learned a limit of 3 and holds 1.
    const bucket = previousEntry("tb", 1, t0 + 3 * 60_000, [2 * 60_000, t0, 0, 0]);
    const pool = previousEntry("pool", 2, t0 + HOUR, [1, t0, 3, t0 + HOUR]);
    const client = ctx.store.client;
    await client.set(scopeKeyOf(ctx.store.prefix, keys[0]!), Buffer.concat([bucket, pool]));
    // What this version reads them as: consumed 3 of 5 tokens, 2 of 3.
    const states: (PolicyStateRecord | undefined)[] = [
      {
        consumed: 3 * 60_000,
        consumedAtMs: t0,
        everyMs: 60_000,
        learnedLimit: 0,
        learnedLimitUntilMs: 0,
        dueMs: t0 + 3 * 60_000,
      },
      {
        consumed: 2,
        anchorMs: t0,
        everyMs: 60_000,
        learnedLimit: 3,
        learnedLimitUntilMs: t0 + HOUR,
        dueMs: t0 + HOUR,
      },
    ];
    const steps: StoreRequest[] = [
      request(policies, keys, "peek"),
      request(policies, keys, "take", { cost: 1 }),
      request(policies, keys, "refund", { cost: 1 }),
      request(policies, keys, "take", { cost: 2 }),
    ];
    for (const [n, step] of steps.entries()) {
      ctx.now = t0 + 25_000 * (n + 1);
      const want = evaluate(step, states, ctx.now);
      expect(Array.from(await ctx.store.execute(step)), step.op).toEqual(want.result);
      if (want.write) states.splice(0, states.length, ...want.states);
    }
    // Written back in this version's payload.
    const entries = await readScope(client, scopeKeyOf(ctx.store.prefix, keys[0]!));
    expect(entries.get("tb")?.values).toHaveLength(5);
  });
});
