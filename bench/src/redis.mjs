// Redis store benchmark: sluice (1 and 3 policies) against rate-limiter-flexible's
// RateLimiterRedis and raw INCR, all on the same ioredis client, 64 decisions in flight.
// Every decision is admitted (limits far above the load), so each one writes.
import { createLimiter } from "@sluice/core";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";

const IN_FLIGHT = 64;
const KEYS = 10_000;
const WARMUP_MS = 400;
const MEASURE_MS = Number(process.env.BENCH_REDIS_MS ?? 2_500);
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Runs `op(i)` with IN_FLIGHT calls outstanding for `ms`; returns completed calls per second. */
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
  const started = performance.now();
  const timer = setTimeout(() => {
    stop = true;
  }, ms);
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
  clearTimeout(timer);
  return (done * 1000) / (performance.now() - started);
}

async function bench(op) {
  await measure(op, WARMUP_MS);
  return Math.round(await measure(op, MEASURE_MS));
}

function scenarios(client, run) {
  const prefix = `bench-${run}-${process.pid}`;
  const store = redisStore({ client });
  const one = createLimiter({
    store,
    prefix: `${prefix}-s1`,
    policies: [
      { kind: "tokenBucket", name: "burst", capacity: 1e9, refill: { tokens: 1000, every: "1s" } },
    ],
  });
  const three = createLimiter({
    store,
    prefix: `${prefix}-s3`,
    policies: [
      { kind: "tokenBucket", name: "burst", capacity: 1e9, refill: { tokens: 1000, every: "1s" } },
      { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
      { kind: "slidingWindow", name: "hour", limit: 1e9, window: "1h" },
    ],
  });
  const rlf = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: `${prefix}-rlf`,
    points: 1e9,
    duration: 60,
  });
  const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
  const incrKeys = ids.map((id) => `${prefix}-incr:${id}`);
  return {
    sluice1: (i) => one.take(ids[i]),
    sluice3: (i) => three.take(ids[i]),
    rlf: (i) => rlf.consume(ids[i]),
    incr: (i) => client.incr(incrKeys[i]),
    cleanup: async () => {
      // Remove what the run wrote (state would expire on its own; INCR keys would not).
      for (const pattern of [`${prefix}*`, `*${prefix}*`]) {
        let cursor = "0";
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
          cursor = next;
          if (keys.length > 0) await client.unlink(...keys);
        } while (cursor !== "0");
      }
    },
  };
}

export async function run() {
  const rows = [];
  const notes = [];
  const results = {};
  for (const autoPipelining of [false, true]) {
    const client = new Redis(url, { enableAutoPipelining: autoPipelining });
    const tag = autoPipelining ? "auto-pipelining" : "plain client";
    const s = scenarios(client, autoPipelining ? "ap" : "plain");
    try {
      await client.ping();
      const r = {
        sluice1: await bench(s.sluice1),
        sluice3: await bench(s.sluice3),
        rlf: await bench(s.rlf),
        incr: await bench(s.incr),
      };
      results[tag] = r;
      rows.push(
        { name: `sluice 1 policy (${tag})`, opsPerSec: r.sluice1 },
        { name: `sluice 3 policies (${tag})`, opsPerSec: r.sluice3 },
        { name: `rate-limiter-flexible RateLimiterRedis 1 policy (${tag})`, opsPerSec: r.rlf },
        { name: `raw INCR (${tag})`, opsPerSec: r.incr },
      );
    } finally {
      await s.cleanup().catch(() => {});
      client.disconnect();
    }
  }
  const plain = results["plain client"];
  const auto = results["auto-pipelining"];
  const ratios = [
    { name: "sluice 3 policies / RLF 1 policy", value: round(plain.sluice3 / plain.rlf) },
    { name: "sluice 1 policy / raw INCR", value: round(plain.sluice1 / plain.incr) },
    {
      name: "sluice 3 policies / RLF 1 policy (auto-pipelining)",
      value: round(auto.sluice3 / auto.rlf),
    },
    {
      name: "sluice 1 policy / raw INCR (auto-pipelining)",
      value: round(auto.sluice1 / auto.incr),
    },
    {
      name: "sluice 1 policy: auto-pipelining / plain",
      value: round(auto.sluice1 / plain.sluice1),
    },
  ];
  notes.push(
    `${IN_FLIGHT} in flight, ${KEYS} keys, ${MEASURE_MS} ms per row after ${WARMUP_MS} ms warm-up, Redis at ${url}; every decision admitted (and written).`,
    "Each scenario shares one ioredis client with the others of its group; rows are measured one after another in the same run.",
    "Targets: sluice 3 policies >= 1.5x RLF 1 policy; sluice 1 policy >= 0.7x raw INCR.",
  );
  return { suite: "redis", rows, ratios, notes };
}

const round = (x) => Math.round(x * 100) / 100;
