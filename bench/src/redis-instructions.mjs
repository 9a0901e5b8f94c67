// Client instructions per decision of the Redis rows, counted by callgrind: the Node side of
// `bench/src/redis.mjs` (64 in flight, one ioredis client, 10,000 keys), which a loaded machine
// cannot move. Run each subject with N and with 0 decisions after the same warm-up and divide the
// difference of the two totals by N (after `npm run build`; a Redis of your own):
//
//   for n in 0 20000; do
//     REDIS_URL=redis://127.0.0.1:<port> valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-$n \
//       node --single-threaded --expose-gc bench/src/redis-instructions.mjs sluice3 $n [checkout] \
//       2>&1 | grep Collected
//   done
//
// Redis' own instructions: run `valgrind --tool=callgrind redis-server --port <port> --save ''`
// and pass BEFORE="callgrind_control -z <its pid>" AFTER="callgrind_control -d <its pid>" (run
// natively, with WARMUP=10000): the dump it writes holds the measured decisions only.
//
// Subjects: sluice1 (token bucket), sluice3 (bucket + minute + hour sliding window), rlf
// (RateLimiterRedis.consume), incr (raw INCR). `checkout`: the sluice build to load (default:
// this one). The batches are the bench's: every answer wakes 64 callers in one tick, and their
// next decisions go in one script call whatever the server's speed.
import { execSync } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { removeKeys } from "./redis-cleanup.mjs";

const [subject = "sluice3", nArg = "20000", checkout = resolve(import.meta.dirname, "../..")] =
  process.argv.slice(2);
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const IN_FLIGHT = 64;
const KEYS = 10_000;
const WARMUP = Number(process.env.WARMUP ?? 20_000);
const dist = (p) => pathToFileURL(resolve(checkout, "packages", p, "dist/index.js")).href;
const { createLimiter } = await import(dist("core"));
const { redisStore } = await import(dist("store-redis"));

const client = new Redis(url);
const prefix = `bench-ins-${process.pid}`;
const bucket = {
  kind: "tokenBucket",
  name: "burst",
  capacity: 1e9,
  refill: { tokens: 1000, every: "1s" },
};
// Under valgrind a round of 64 decisions can take longer than the default timeoutMs (1 s) while
// code is compiled: a long timeout keeps every decision on the store's path, as in a native run.
const timeoutMs = 600_000;
const subjects = {
  sluice1: () => {
    const l = createLimiter({
      store: redisStore({ client }),
      timeoutMs,
      prefix: `${prefix}-s1`,
      policies: [bucket],
    });
    return (k) => l.take(k);
  },
  sluice3: () => {
    const l = createLimiter({
      store: redisStore({ client }),
      timeoutMs,
      prefix: `${prefix}-s3`,
      policies: [
        bucket,
        { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
        { kind: "slidingWindow", name: "hour", limit: 1e9, window: "1h" },
      ],
    });
    return (k) => l.take(k);
  },
  rlf: () => {
    const r = new RateLimiterRedis({
      storeClient: client,
      keyPrefix: `${prefix}-rlf`,
      points: 1e9,
      duration: 60,
    });
    return (k) => r.consume(k);
  },
  incr: () => (k) => client.incr(`${prefix}-incr:${k}`),
};
const op = subjects[subject]?.();
if (op === undefined) throw new Error(`unknown subject ${subject}: ${Object.keys(subjects)}`);
const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);

// Decisions that were not plain admissions (a refusal, a degraded answer after a timeout): should
// be 0, else the count measured another path.
let unusual = 0;

/** `n` decisions (rounded to a multiple of IN_FLIGHT), IN_FLIGHT at a time. */
async function loop(n) {
  const each = Math.ceil(n / IN_FLIGHT);
  const worker = async (w) => {
    for (let j = 0, i = w; j < each; j++, i += IN_FLIGHT) {
      const d = await op(ids[i % KEYS]);
      if (d !== null && typeof d === "object" && (d.allowed === false || d.degraded)) unusual++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
}

await client.ping();
await loop(WARMUP);
globalThis.gc();
// For counting Redis' own instructions (redis-server under callgrind): BEFORE and AFTER are shell
// commands run around the measured loop, e.g. `callgrind_control -z <pid>` and `-d`.
if (process.env.BEFORE) execSync(process.env.BEFORE);
await loop(Number(nArg));
if (process.env.AFTER) execSync(process.env.AFTER);
globalThis.gc();
await removeKeys(client, prefix);
client.disconnect();
process.stdout.write(`${subject}: ${nArg} decisions, ${unusual} refused or degraded\n`);
