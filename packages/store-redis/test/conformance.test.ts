import { storeConformanceSuite } from "@sluice/core/testing";
import { Redis } from "ioredis";
import { RedisStore } from "../src/index.js";
import { REDIS_URL, redisReachable, uniquePrefix } from "./helpers.js";

if (await redisReachable()) {
  storeConformanceSuite({
    name: "redis",
    makeStore: () => new RedisStore({ client: new Redis(REDIS_URL), prefix: uniquePrefix("conf") }),
    closeStore: async (store) => {
      await (store as unknown as { client: Redis }).client.quit();
    },
    numRuns: 25,
  });
}
