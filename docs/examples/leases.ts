// The leases section of the getting-started guide: npx tsx docs/examples/leases.ts
import { fileURLToPath } from "node:url";
import { createLimiter, type Store } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";

export async function main(store: Store = memoryStore(), log = console.log): Promise<void> {
  const limiter = createLimiter({
    store,
    policies: [
      { kind: "tokenBucket", name: "burst", capacity: 5, refill: { tokens: 1, every: "1s" } },
      { kind: "concurrency", name: "inFlight", limit: 2, leaseTtl: "30s" },
    ],
  });
  const work = async () => {};

  // run: acquire a slot (and charge the rate policies), call the function, release.
  const body = await limiter.run("user-42", async () => "response body", { timeoutMs: 10_000 });
  log(`run: ${body}`);

  // tryAcquire answers at once; the lease is null when refused.
  const { decision, lease } = await limiter.tryAcquire("user-42");
  log(`tryAcquire: allowed=${decision.allowed} lease=${lease !== null}`);
  if (lease) {
    try {
      await work();
      await lease.renew(); // long jobs: push the expiry out by leaseTtl again
    } finally {
      await lease.release();
    }
  }

  // acquire waits; `await using` releases the lease at the end of the block.
  {
    await using held = await limiter.acquire("user-42", { timeoutMs: 5_000 });
    await work();
    const free = (await limiter.peek("user-42")).policies[1]?.remaining;
    log(`acquire: live=${held.expiresAtMs > Date.now()} free slots=${free}`);
  }
  log(`after the block: free slots=${(await limiter.peek("user-42")).policies[1]?.remaining}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
