import { compareWithReference, type TimeDriver } from "@sluice/core/testing";
import { memoryStore } from "@sluice/store-memory";
import { describe, it } from "vitest";

// The memory store runs evaluate() itself, but its own common take and sweeping must agree with
// it at the largest values the schema accepts too.
describe("memory store at the largest values the schema accepts", () => {
  it("agrees with evaluate() on every kind", { timeout: 120_000 }, async () => {
    let now = 1_800_000_000_000;
    const time: TimeDriver = {
      now: () => now,
      pass: async (ms) => {
        now += ms;
      },
    };
    const store = memoryStore({ clock: () => now });
    await compareWithReference({ store, time, extreme: true, numRuns: 500 });
  });
});
