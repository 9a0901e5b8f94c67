// Redis store benchmark: sluice (1 and 3 policies) against rate-limiter-flexible's
// RateLimiterRedis and raw INCR, all on the same ioredis client, 64 decisions in flight.
// Every decision is admitted (limits far above the load), so each one writes.
import { createLimiter } from "@sluice/core";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { removeKeys } from "./redis-cleanup.mjs";

const IN_FLIGHT = 64;
const KEYS = 10_000;
const WARMUP_MS = 400;
const MEASURE_MS = Number(process.env.BENCH_REDIS_MS ?? 2_500);
// Each row's MEASURE_MS is spent in ROUNDS slices, the rows of a group taking turns, so that a
// slow spell of a shared machine falls on every row alike; a row is the median of its slices.
const ROUNDS = Number(process.env.BENCH_REDIS_ROUNDS ?? 5);
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Runs `op(i)` with IN_FLIGHT calls outstanding for `ms`; returns completed calls per second. */
async function measure(op, ms, counted) {
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
  if (counted) counted.done += done;
  return (done * 1000) / (performance.now() - started);
}

/** Microseconds Redis has spent in EVALSHA since it started (INFO commandstats). */
async function evalshaUsec(admin) {
  const m = /cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(await admin.info("commandstats"));
  return m ? Number(m[1]) : 0;
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

/**
 * Ops/s per row (median of its slices), the slices themselves, and for each row the time Redis
 * spent in EVALSHA per completed call (the script's cost per decision, for sluice's rows).
 */
async function benchRows(ops, admin) {
  const names = Object.keys(ops);
  for (const name of names) await measure(ops[name], WARMUP_MS);
  const slices = Object.fromEntries(names.map((name) => [name, []]));
  const script = Object.fromEntries(names.map((name) => [name, { done: 0, usec: 0 }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of names) {
      const before = await evalshaUsec(admin);
      slices[name].push(await measure(ops[name], MEASURE_MS / ROUNDS, script[name]));
      script[name].usec += (await evalshaUsec(admin)) - before;
    }
  }
  const rows = Object.fromEntries(names.map((name) => [name, Math.round(median(slices[name]))]));
  const usecPerCall = Object.fromEntries(
    names.map((name) => [name, round(script[name].usec / script[name].done)]),
  );
  return { rows, slices, usecPerCall };
}

/** Median over the rounds of a / b, each round's slices measured back to back. */
const pairedRatio = (slices, a, b) => round(median(slices[a].map((x, i) => x / slices[b][i])));

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
      await removeKeys(client, prefix);
    },
  };
}

export async function run() {
  const rows = [];
  const notes = [];
  const results = {};
  // A connection of its own for INFO, outside the rows' client.
  const admin = new Redis(url);
  for (const autoPipelining of [false, true]) {
    const client = new Redis(url, { enableAutoPipelining: autoPipelining });
    const tag = autoPipelining ? "auto-pipelining" : "plain client";
    const s = scenarios(client, autoPipelining ? "ap" : "plain");
    try {
      await client.ping();
      const {
        rows: r,
        slices,
        usecPerCall,
      } = await benchRows(
        { sluice1: s.sluice1, sluice3: s.sluice3, rlf: s.rlf, incr: s.incr },
        admin,
      );
      results[tag] = { ...r, slices, usecPerCall };
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
  admin.disconnect();
  const plain = results["plain client"];
  const auto = results["auto-pipelining"];
  const ratios = [
    {
      name: "sluice 3 policies / RLF 1 policy",
      value: pairedRatio(plain.slices, "sluice3", "rlf"),
    },
    { name: "sluice 1 policy / raw INCR", value: pairedRatio(plain.slices, "sluice1", "incr") },
    {
      name: "sluice 3 policies / RLF 1 policy (auto-pipelining)",
      value: pairedRatio(auto.slices, "sluice3", "rlf"),
    },
    {
      name: "sluice 1 policy / raw INCR (auto-pipelining)",
      value: pairedRatio(auto.slices, "sluice1", "incr"),
    },
    {
      name: "sluice 1 policy: auto-pipelining / plain",
      value: round(auto.sluice1 / plain.sluice1),
    },
  ];
  notes.push(
    `${IN_FLIGHT} in flight, ${KEYS} keys, ${MEASURE_MS} ms per row after ${WARMUP_MS} ms warm-up, Redis at ${url}; every decision admitted (and written).`,
    `Each scenario shares one ioredis client with the others of its group; the rows of a group take turns in ${ROUNDS} slices of ${MEASURE_MS / ROUNDS} ms; a row is the median of its slices, a ratio the median of the per-round ratios.`,
    "Targets: sluice 3 policies >= 1.5x RLF 1 policy; sluice 1 policy >= 0.7x raw INCR.",
    `Wall time Redis spent inside EVALSHA per decision (plain client; on a busy machine it includes time the scheduler took from Redis): sluice 1 policy ${plain.usecPerCall.sluice1} µs, 3 policies ${plain.usecPerCall.sluice3} µs; RLF ${plain.usecPerCall.rlf} µs per consume.`,
  );
  return { suite: "redis", rows, ratios, notes };
}

const round = (x) => Math.round(x * 100) / 100;
