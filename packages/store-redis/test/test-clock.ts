import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import type { RedisStoreOptions } from "../src/index.js";
import { type ExactClockRedisStore, exactClockRedisStore } from "../src/testing/index.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers.js";

export interface TestClockRedisStore extends ExactClockRedisStore {
  /** Deletes the run's keys and the clock key, then quits the client. */
  dispose(): Promise<void>;
}

/** An exact-clock store (`@sluice/store-redis/testing`) on a client and prefix of its own. */
export async function testClockRedisStore(
  clock: () => number,
  options: Omit<RedisStoreOptions, "client" | "prefix"> = {},
): Promise<TestClockRedisStore> {
  const client = new Redis(REDIS_URL);
  const prefix = uniquePrefix("clock");
  const store = await exactClockRedisStore({ ...options, client, prefix, clock });
  return Object.assign(store, {
    async dispose() {
      await deleteKeys(client, prefix);
      await client.quit();
    },
  });
}

/**
 * A test-clock store for the tests of one describe block: `ctx.now` is its clock (settable),
 * `ctx.store` the store (set before the first test, disposed after the last).
 */
export function useTestClockStore(
  startMs = 1_800_000_000_000,
  options: Omit<RedisStoreOptions, "client" | "prefix"> = {},
): {
  now: number;
  store: TestClockRedisStore;
} {
  const ctx = { now: startMs, store: undefined as unknown as TestClockRedisStore };
  beforeAll(async () => {
    ctx.store = await testClockRedisStore(() => ctx.now, options);
  });
  afterAll(() => ctx.store.dispose());
  return ctx;
}
