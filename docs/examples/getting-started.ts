// The getting-started guide as one runnable file: npx tsx docs/examples/getting-started.ts
import { fileURLToPath } from "node:url";
import { createLimiter, isSluiceError, LimitTimeoutError, type Store } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";

export async function main(store: Store = memoryStore(), log = console.log): Promise<void> {
  const limiter = createLimiter({
    store,
    policies: [
      { kind: "tokenBucket", name: "burst", capacity: 5, refill: { tokens: 1, every: "1s" } },
      { kind: "fixedWindow", name: "daily", limit: 1000, window: "1d" },
      { kind: "concurrency", name: "inFlight", limit: 2, leaseTtl: "30s" },
    ],
  });

  // take: one atomic decision over every rate policy.
  const first = await limiter.take("user-42");
  log(`take: allowed=${first.allowed} remaining=${first.remaining}`);

  const big = await limiter.take("user-42", { cost: 10 });
  log(
    `take cost 10: allowed=${big.allowed} blockedBy=${big.blockedBy.join(",")} retryAfterMs=${big.retryAfterMs}`,
  );

  // peek: the current state, charging nothing.
  const now = await limiter.peek("user-42");
  log(`peek: remaining=${now.remaining}`);

  // Spend the rest of the burst, then wait with a deadline.
  await limiter.take("user-42", { cost: 4 });
  try {
    await limiter.wait("user-42", { timeoutMs: 10 });
  } catch (error) {
    if (error instanceof LimitTimeoutError) log(`wait: ${error.code}`);
    else throw error;
  }

  // An AbortSignal cancels a wait; the promise rejects with the signal's reason.
  const controller = new AbortController();
  const waiting = limiter.wait("user-42", { signal: controller.signal });
  controller.abort(new Error("shutting down"));
  await waiting.catch((error: Error) => log(`wait aborted: ${error.message}`));

  // run: a lease on a concurrency slot (plus the rate policies), released whatever happens.
  await limiter.reset("user-42");
  const result = await limiter.run("user-42", async (lease) => {
    log(`run: holding lease, expires after now: ${lease.expiresAtMs > Date.now()}`);
    return "done";
  });
  log(`run: ${result}`);

  // Malformed input is an error, over-limit is not.
  try {
    await limiter.take("user-42", { cost: -1 });
  } catch (error) {
    if (isSluiceError(error)) log(`error: ${error.code} retryable=${error.retryable}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
