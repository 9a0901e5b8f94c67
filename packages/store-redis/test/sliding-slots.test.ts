import {
  compilePolicies,
  evaluate,
  type PolicyStateRecord,
  RESULT_HEADER,
  RESULT_STRIDE,
} from "@sluice/core/store";
import { describe, expect, it } from "vitest";
import { keysFor, Model, readScope, redisReachable, request, scopeKeyOf } from "./helpers.js";
import { useTestClockStore } from "./test-clock.js";

const reachable = await redisReachable();

// A window that holds hundreds of slots: the script keeps them packed (as read) through a take.
const policies = compilePolicies([
  { kind: "slidingWindow", name: "sw", limit: 150, window: 2_000, precision: 10 },
  { kind: "tokenBucket", name: "tb", capacity: 1_000, refill: { tokens: 1, every: 1 } },
]);

/** One sliding-window entry as an earlier version wrote it: without the closing total. */
function entryWithoutTotal(due: number, slots: number[], counts: number[]): Buffer {
  const name = Buffer.from("sw");
  const head = Buffer.alloc(4 + name.length + 1 + 8 + 4);
  head.writeUInt32LE(name.length, 0);
  name.copy(head, 4);
  head.writeUInt8(4, 4 + name.length);
  head.writeDoubleLE(due, 5 + name.length);
  head.writeUInt32LE(20 + 16 * slots.length, 13 + name.length);
  const body = Buffer.alloc(20 + 16 * slots.length);
  body.writeUInt32LE(slots.length, 16); // ll = lu = 0
  slots.forEach((s, i) => {
    body.writeDoubleLE(s, 20 + 16 * i);
    body.writeDoubleLE(counts[i]!, 28 + 16 * i);
  });
  return Buffer.concat([head, body]);
}

/** Remaining of policy i in a store answer. */
const remaining = (answer: readonly number[], i: number) =>
  answer[RESULT_HEADER + RESULT_STRIDE * i + 1];

describe.skipIf(!reachable && !process.env.CI)(
  "redis store: sliding windows with many slots",
  () => {
    const clock = useTestClockStore();

    it("matches evaluate() through hundreds of slots, refusals, expiry, refunds and reconciles", async () => {
      const keys = keysFor(policies, "many");
      const model = new Model();
      const step = async (req: ReturnType<typeof request>) => {
        const actual = [...(await clock.store.execute(req))];
        expect(actual).toEqual(model.check(req, actual));
        return actual;
      };
      // 160 takes in 160 slots: the last 10 are refused (retry time read from the slots).
      for (let i = 0; i < 160; i++) {
        clock.now += 10;
        const r = await step(request(policies, keys, "take", { cost: 1 }));
        expect(r[0]).toBe(i < 150 ? 1 : 0);
      }
      const entry = (
        await readScope(clock.store.client, scopeKeyOf(clock.store.prefix, keys[0]!))
      ).get("sw");
      expect(entry?.values.length).toBe(2 + 2 * 150);
      expect(entry?.total).toBe(150);
      // Admitted at +10 ms .. +1,500 ms; at +2,600 ms those of slots before +600 ms (59 of them)
      // have left the window at once, and 91 still count.
      clock.now += 1_000;
      const after = await step(request(policies, keys, "peek"));
      expect(remaining(after, 0)).toBe(59);
      await step(request(policies, keys, "take", { cost: 3 }));
      await step(request(policies, keys, "take", { cost: 2 }));
      await step(request(policies, keys, "refund", { cost: 4 }));
      await step(
        request(policies, keys, "reconcile", {
          observations: [
            { remaining: 20, limit: undefined, resetAtMs: clock.now + 1_500 },
            undefined,
          ],
        }),
      );
      clock.now += 5;
      await step(request(policies, keys, "take", { cost: 1 }));
      clock.now += 700;
      await step(request(policies, keys, "take", { cost: 1 }));
      const last = (
        await readScope(clock.store.client, scopeKeyOf(clock.store.prefix, keys[0]!))
      ).get("sw");
      const counts = last!.values.slice(2).filter((_, i) => i % 2 === 1);
      expect(last?.total).toBe(counts.reduce((a, b) => a + b, 0));
    });

    it("reads an entry written without its total, and writes it back with one", async () => {
      const keys = keysFor(policies.slice(0, 1), "old");
      const scope = scopeKeyOf(clock.store.prefix, keys[0]!);
      const slot0 = Math.floor(clock.now / 10);
      const slots = [slot0 - 50, slot0 - 20, slot0 - 3];
      const counts = [4, 7, 2];
      const due = (slot0 - 3 + 1) * 10 + 2_000;
      await clock.store.client.set(scope, entryWithoutTotal(due, slots, counts), "PX", 60_000);
      const req = request(policies.slice(0, 1), keys, "take", { cost: 5 });
      const actual = [...(await clock.store.execute(req))];
      const stored: PolicyStateRecord = {
        slots,
        counts,
        learnedLimit: 0,
        learnedLimitUntilMs: 0,
        dueMs: due,
      };
      expect(actual).toEqual(evaluate(req, [stored], clock.now).result);
      expect(remaining(actual, 0)).toBe(150 - 18);
      const entry = (await readScope(clock.store.client, scope)).get("sw");
      expect(entry?.total).toBe(18);
      expect(entry?.values.slice(2)).toEqual([
        ...slots.flatMap((s, i) => [s, counts[i]!]),
        slot0,
        5,
      ]);
    });
  },
);
