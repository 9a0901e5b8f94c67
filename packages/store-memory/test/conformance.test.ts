import { storeConformanceSuite } from "@sluice/core/testing";
import { memoryStore } from "@sluice/store-memory";

storeConformanceSuite({
  name: "memory",
  makeStore: ({ clock }) => memoryStore({ clock }),
  numRuns: process.env.CI ? 1000 : 200,
});
