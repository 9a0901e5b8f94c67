import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, it } from "vitest";
import { RedisStore } from "../src/index.js";
import { REDIS_URL, redisReachable, uniquePrefix } from "./helpers.js";
import { runAgainstReference } from "./matches-reference.js";

const reachable = await redisReachable();

describe.skipIf(!reachable)("redis store against the reference math", () => {
  let client: Redis;
  let store: RedisStore;
  beforeAll(() => {
    client = new Redis(REDIS_URL);
    store = new RedisStore({ client, prefix: uniquePrefix("ref") });
  });
  afterAll(() => client.quit());

  it("returns what evaluate() returns for random op sequences at the server clock", async () => {
    await runAgainstReference(store, "ref", [1, 2, 3, 4, 5, 6, 7, 8], 120);
  });
});
