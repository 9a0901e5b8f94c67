import { compareWithReference, storeConformanceSuite } from "@sluice/core/testing";
import { it } from "vitest";
import { mapStore } from "./minimal-store.js";

storeConformanceSuite({
  name: "map (docs example)",
  makeStore: ({ clock }) => mapStore(clock),
  numRuns: 30,
});

it("agrees with the reference on a limiter of its own", async () => {
  let now = Date.UTC(2026, 0, 1);
  await compareWithReference({
    store: mapStore(() => now),
    time: {
      now: () => now,
      pass: async (ms) => {
        now += ms;
      },
    },
    limiters: [
      [
        { kind: "tokenBucket", name: "burst", capacity: 5, refill: { tokens: 1, every: 40 } },
        { kind: "fixedWindow", name: "day", limit: 20, window: "1d", timeZone: "Europe/London" },
      ],
    ],
    longTime: true,
    numRuns: 30,
  });
});
