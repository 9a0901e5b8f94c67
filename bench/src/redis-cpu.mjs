// CPU per decision of the Redis rows of `npm run bench`, client and server apart: the Node
// process' CPU (process.cpuUsage, all threads) and Redis' (INFO cpu) per completed decision,
// rows alternated in ROUNDS rounds of MS each. With a loaded machine the ops/s move with the
// load; CPU per decision moves much less. Use a Redis of your own (REDIS_URL): INFO cpu counts
// every client's commands.
//
//   REDIS_URL=redis://127.0.0.1:<port> node src/redis-cpu.mjs [checkout{options} ...]
//
// Each checkout (default: this one) must be built; `{...}` after it are redisStore options
// (`/work/x{"maxBatch":64}`), so one checkout can be compared with itself under other settings.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { removeKeys } from "./redis-cleanup.mjs";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const MS = Number(process.env.MS ?? 1000);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 64);
const KEYS = 10_000;
const ROWS = (process.env.ROWS ?? "sluice1,sluice3,rlf").split(",");

const specs = process.argv.slice(2);
if (specs.length === 0) specs.push(resolve(import.meta.dirname, "../.."));

const client = new Redis(url);
const admin = new Redis(url);
const prefix = `bench-cpu-${process.pid}`;
const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);

async function redisCpuUs() {
  const info = await admin.info("cpu");
  const get = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (get("used_cpu_user") + get("used_cpu_sys")) * 1e6;
}

const ops = {};
for (const [b, spec] of specs.entries()) {
  const brace = spec.indexOf("{");
  const root = brace < 0 ? spec : spec.slice(0, brace);
  const options = brace < 0 ? {} : JSON.parse(spec.slice(brace));
  const dist = (p) => pathToFileURL(resolve(root, "packages", p, "dist/index.js")).href;
  const { createLimiter } = await import(dist("core"));
  const { redisStore } = await import(dist("store-redis"));
  const store = redisStore({ client, ...options });
  const bucket = {
    kind: "tokenBucket",
    name: "burst",
    capacity: 1e9,
    refill: { tokens: 1000, every: "1s" },
  };
  const one = createLimiter({ store, prefix: `${prefix}-${b}-s1`, policies: [bucket] });
  const three = createLimiter({
    store,
    prefix: `${prefix}-${b}-s3`,
    policies: [
      bucket,
      { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
      { kind: "slidingWindow", name: "hour", limit: 1e9, window: "1h" },
    ],
  });
  if (ROWS.includes("sluice1")) ops[`sluice1 ${spec}`] = (i) => one.take(ids[i]);
  if (ROWS.includes("sluice3")) ops[`sluice3 ${spec}`] = (i) => three.take(ids[i]);
}
if (ROWS.includes("rlf")) {
  const rlf = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: `${prefix}-rlf`,
    points: 1e9,
    duration: 60,
  });
  ops.rlf = (i) => rlf.consume(ids[i]);
}
if (ROWS.includes("incr")) ops.incr = (i) => client.incr(`${prefix}-incr:${ids[i]}`);

async function measure(op, ms) {
  let stop = false;
  let done = 0;
  const worker = async (w) => {
    let i = w;
    while (!stop) {
      await op(i % KEYS);
      i += IN_FLIGHT;
      done++;
    }
  };
  const cpu0 = process.cpuUsage();
  const redis0 = await redisCpuUs();
  const started = performance.now();
  const timer = setTimeout(() => {
    stop = true;
  }, ms);
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const redis = (await redisCpuUs()) - redis0;
  return { ops: done / seconds, client: (cpu.user + cpu.system) / done, server: redis / done };
}

const names = Object.keys(ops);
for (const name of names) await measure(ops[name], 300);
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const name of r % 2 === 0 ? names : [...names].reverse()) {
    results[name].push(await measure(ops[name], MS));
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const name of names) {
  const rs = results[name];
  console.log(
    `${name.padEnd(60)} ${Math.round(median(rs.map((x) => x.ops)))
      .toString()
      .padStart(7)} ops/s  client ${median(rs.map((x) => x.client)).toFixed(1)} us  redis ${median(
      rs.map((x) => x.server),
    ).toFixed(1)} us per decision`,
  );
}
await removeKeys(client, prefix);
client.disconnect();
admin.disconnect();
