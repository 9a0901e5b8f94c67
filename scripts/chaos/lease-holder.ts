// Child of the chaos run: takes the only slot and holds it until it is killed.
import { createLimiter } from "@sluice/core";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";

const [port, prefix] = process.argv.slice(2);
const client = new Redis({ host: "127.0.0.1", port: Number(port) });
const limiter = createLimiter({
  store: redisStore({ client }),
  policies: [{ kind: "concurrency", name: "slots", limit: 1, leaseTtl: "2s" }],
  prefix: prefix!,
  onStoreError: "throw",
});
await limiter.acquire("job");
process.stdout.write("held\n");
setInterval(() => {}, 60_000);
