import { storeConformanceSuite } from "@sluice/core/testing";
import { redisReachable } from "./helpers.js";
import { type TestClockRedisStore, testClockRedisStore } from "./test-clock.js";

// The script reads its clock from a key the suite's fake clock sets: exact, long scenarios.
if (await redisReachable()) {
  storeConformanceSuite({
    name: "redis (test clock)",
    makeStore: ({ clock }) => testClockRedisStore(clock),
    closeStore: (store) => (store as TestClockRedisStore).dispose(),
    numRuns: 500,
  });
}
