import { compilePolicies, KeyPlan } from "@sluice/core/store";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/index.js";
import { type OwnCluster, startCluster } from "./cluster.js";
import { request, uniquePrefix } from "./helpers.js";
import { runAgainstReference } from "./matches-reference.js";

// Needs redis-server and redis-cli on PATH (as the rest of the suite needs Redis).
describe("redis store on a 3-master Redis Cluster", () => {
  let cluster: OwnCluster | undefined;
  let client: Cluster;
  let store: RedisStore;

  beforeAll(async () => {
    cluster = await startCluster();
    client = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })));
    store = new RedisStore({ client, prefix: uniquePrefix("cluster") });
  });
  afterAll(async () => {
    client?.disconnect();
    cluster?.stop();
  });

  it("declares that it needs a partition", () => {
    expect(store.capabilities.requiresPartition).toBe(true);
  });

  it("returns what evaluate() returns, with decisions spread over every master", async () => {
    await runAgainstReference(store, "c", [11, 12, 13, 14, 15, 16], 60);
  });

  it("keeps every key of a decision in one slot whatever braces the key holds", async () => {
    const policies = compilePolicies([
      { kind: "tokenBucket", name: "a{b}", capacity: 3, refill: { tokens: 1, every: "1s" } },
      { kind: "concurrency", name: "}{", limit: 2, leaseTtl: "1s" },
      { kind: "fixedWindow", name: "per-user", limit: 3, window: "1m", scope: ["user"] },
    ]);
    const plan = new KeyPlan("sl{x}", policies, "tenant", true);
    for (const key of [
      { tenant: "{acme}", user: "}{" },
      { tenant: "a}b{c", user: "{u}" },
      { tenant: "plain", user: "x" },
    ]) {
      const { keys } = plan.resolve(key);
      const r = await store.execute(
        request(policies, keys, "take", { acquire: true, leaseId: "l1" }),
      );
      expect(r[0]).toBe(1);
      const stored = [...keys.map((k) => `${(store as unknown as { prefix: string }).prefix}${k}`)];
      const slots = await Promise.all(
        stored.map((k) => client.cluster("KEYSLOT", k) as Promise<number>),
      );
      expect(new Set(slots).size).toBe(1);
    }
  });
});
