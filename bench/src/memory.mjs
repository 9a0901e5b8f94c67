// Memory store benchmark: sluice take() with 1 and 3 policies against the in-process limiters a
// user would pick instead, in the same run, plus the heap each live key costs.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLimiter } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import Bottleneck from "bottleneck";
import { RateLimiter } from "limiter";
import { RateLimiterMemory } from "rate-limiter-flexible";

const KEYS = 10_000;
const WARMUP_MS = 500;
/** Measured time per row, split into rounds that visit every row in turn (JIT and GC drift). */
const MEASURE_MS = Number(process.env.BENCH_MEMORY_MS ?? 3_600);
/** Short rounds, so that rows compared in a ratio are measured close together in time. */
const ROUNDS = 9;
const LIVE_KEYS = 100_000;
/** A fixed store clock for the heap measurement, so no window rolls over while it fills. */
const HEAP_CLOCK_MS = Date.UTC(2026, 0, 1, 12);

// Every limit is far above the load: each decision admits and writes, as in the peers. The bucket
// refills slower than the run drains it, so its state stays live like the windows' (a bucket that
// is full again between two visits is dropped and re-created each time).
const ONE_WINDOW = [{ kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" }];
const ONE_BUCKET = [
  { kind: "tokenBucket", name: "burst", capacity: 1e6, refill: { tokens: 1_000, every: "1m" } },
];
const THREE_POLICIES = [
  { kind: "tokenBucket", name: "burst", capacity: 1e6, refill: { tokens: 1_000, every: "1m" } },
  { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
  { kind: "fixedWindow", name: "day", limit: 1e9, window: "1d" },
];

/** The keys of `list` one after the other, from the first again after the last. */
const inTurnOver = (list) => {
  let cursor = 0;
  return () => {
    const key = list[cursor];
    cursor = cursor === list.length - 1 ? 0 : cursor + 1;
    return key;
  };
};

const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
/** The next of the KEYS keys, in turn. */
const cycled = inTurnOver(ids);

/**
 * More keys in use than fit in the limiter's first bound on cached keys (two generations of
 * 16,384), drawn at random as a server's callers come: each key comes back now and then.
 */
const MANY_KEYS = 100_000;
const manyIds = Array.from({ length: MANY_KEYS }, (_, i) => `caller-${i}`);
let seed = 1;
const drawn = () => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
  return manyIds[seed % MANY_KEYS];
};

/**
 * The same keys taken in turn, as a job that goes through every customer does: each key comes
 * back only after all the others, so after both generations of the cache have let it go.
 */
const inTurn = inTurnOver(manyIds);

/** Awaits `op(key)` one at a time, keys from `next`, for `ms`; returns decisions per second. */
async function measure(op, ms, next = cycled) {
  let done = 0;
  const started = performance.now();
  const until = started + ms;
  // The clock is read every 64 decisions: cheap next to them, and fine-grained enough for a peer
  // that takes milliseconds per call.
  while (performance.now() < until) {
    for (let j = 0; j < 64; j++) {
      await op(next());
    }
    done += 64;
  }
  return (done * 1000) / (performance.now() - started);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Warms every op up, then measures them round-robin. Returns the median round per op, and
 * `ratio(a, b)`: the median over the rounds of a / b, each from rows measured one after the
 * other (on a shared machine the load moves between rounds more than within one).
 */
async function compare(ops, next = cycled) {
  for (const op of Object.values(ops)) await measure(op, WARMUP_MS, next);
  const samples = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, op] of Object.entries(ops)) {
      samples[name].push(await measure(op, MEASURE_MS / ROUNDS, next));
    }
  }
  const rows = Object.fromEntries(
    Object.entries(samples).map(([k, xs]) => [k, Math.round(median(xs))]),
  );
  const ratio = (a, b) => median(samples[a].map((x, i) => x / samples[b][i]));
  return { rows, ratio };
}

function peers() {
  const rlf = new RateLimiterMemory({ points: 1e9, duration: 60 });
  // limiter has no keyed store: one RateLimiter per key, in a Map, as a user would write it.
  const buckets = new Map();
  const limiterTake = (key) => {
    let b = buckets.get(key);
    if (b === undefined) {
      b = new RateLimiter({ tokensPerInterval: 1e9, interval: "minute" });
      buckets.set(key, b);
    }
    return b.tryRemoveTokens(1);
  };
  const group = new Bottleneck.Group({ reservoir: 1e9 });
  const noop = () => undefined;
  return {
    ops: {
      rlf: (key) => rlf.consume(key),
      limiter: (key) => limiterTake(key),
      bottleneck: (key) => group.key(key).schedule(noop),
    },
    stop: () => group.disconnect(),
  };
}

// ---- heap per live key (child process with --expose-gc) -----------------------------------

const HEAP_SUBJECTS = {
  sluice1: () => {
    const l = createLimiter({
      store: memoryStore({ clock: () => HEAP_CLOCK_MS }),
      policies: ONE_WINDOW,
    });
    return (key) => l.take(key);
  },
  sluice3: () => {
    const l = createLimiter({
      store: memoryStore({ clock: () => HEAP_CLOCK_MS }),
      policies: THREE_POLICIES,
    });
    return (key) => l.take(key);
  },
  rlf: () => {
    const rlf = new RateLimiterMemory({ points: 1e9, duration: 60 });
    return (key) => rlf.consume(key);
  },
};

function heapUsedAfterGc() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/**
 * Fills LIVE_KEYS keys, then LIVE_KEYS more. `average`: heap per key over the first fill, which
 * includes sluice's cache of resolved keys (keys taken once each never grow it past 32,768
 * entries); `marginal`: what each further live key adds.
 */
/** Keeps the subject reachable until the process exits. */
const held = [];

async function heapChild(subject) {
  const take = HEAP_SUBJECTS[subject]();
  held.push(take);
  for (let i = 0; i < 1_000; i++) await take(`warm-${i}`);
  const h0 = heapUsedAfterGc();
  for (let i = 0; i < LIVE_KEYS; i++) await take(`customer-${i}`);
  const h1 = heapUsedAfterGc();
  for (let i = LIVE_KEYS; i < 2 * LIVE_KEYS; i++) await take(`customer-${i}`);
  const h2 = heapUsedAfterGc();
  process.stdout.write(
    JSON.stringify({
      average: Math.round((h1 - h0) / LIVE_KEYS),
      marginal: Math.round((h2 - h1) / LIVE_KEYS),
    }),
  );
}

function bytesPerKey(subject) {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", fileURLToPath(import.meta.url), "--heap", subject],
    { encoding: "utf8" },
  );
  return JSON.parse(out);
}

/**
 * sluice with 1 policy against RLF, each a limiter of its own (the rows measured before leave
 * them nothing), the key of each call made from `next()` by `sluiceKey` and `rlfKey`.
 */
function oneAgainstRlf(sluiceKey, rlfKey, next) {
  const one = createLimiter({ store: memoryStore(), policies: ONE_WINDOW });
  const rlf = new RateLimiterMemory({ points: 1e9, duration: 60 });
  return compare(
    { sluice1: (k) => one.take(sluiceKey(k)), rlf: (k) => rlf.consume(rlfKey(k)) },
    next,
  );
}

// ---- suite ----------------------------------------------------------------------------------

export async function run() {
  const one = createLimiter({ store: memoryStore(), policies: ONE_WINDOW });
  const bucket = createLimiter({ store: memoryStore(), policies: ONE_BUCKET });
  const three = createLimiter({ store: memoryStore(), policies: THREE_POLICIES });
  const p = peers();
  const { rows: r, ratio } = await compare({
    sluice1: (k) => one.take(k),
    bucket1: (k) => bucket.take(k),
    sluice3: (k) => three.take(k),
    ...p.ops,
  });
  p.stop();
  // Many keys at random.
  const many = await oneAgainstRlf(
    (k) => k,
    (k) => k,
    drawn,
  );
  // The same keys in turn.
  const turns = await oneAgainstRlf(
    (k) => k,
    (k) => k,
    inTurn,
  );
  // Object keys ({ tenant, user }), against RLF given the two joined into one string.
  const objects = await oneAgainstRlf(
    (k) => ({ tenant: "acme", user: k }),
    (k) => `acme:${k}`,
    cycled,
  );
  const heap = {
    sluice1: bytesPerKey("sluice1"),
    sluice3: bytesPerKey("sluice3"),
    rlf: bytesPerKey("rlf"),
  };
  const round = (x) => Math.round(x * 100) / 100;
  return {
    suite: "memory",
    rows: [
      { name: "sluice take, 1 policy (fixed window)", opsPerSec: r.sluice1 },
      { name: "sluice take, 1 policy (token bucket)", opsPerSec: r.bucket1 },
      { name: "sluice take, 3 policies (bucket + minute + day)", opsPerSec: r.sluice3 },
      { name: "rate-limiter-flexible RateLimiterMemory.consume", opsPerSec: r.rlf },
      { name: "limiter RateLimiter.tryRemoveTokens (one per key)", opsPerSec: r.limiter },
      { name: "bottleneck Group.key().schedule", opsPerSec: r.bottleneck },
      {
        name: "sluice take, 1 policy, object keys { tenant, user }",
        opsPerSec: objects.rows.sluice1,
      },
      {
        name: "rate-limiter-flexible consume, tenant and user joined",
        opsPerSec: objects.rows.rlf,
      },
      {
        name: `sluice take, 1 policy, ${MANY_KEYS.toLocaleString("en")} keys at random`,
        opsPerSec: many.rows.sluice1,
      },
      {
        name: `rate-limiter-flexible consume, ${MANY_KEYS.toLocaleString("en")} keys at random`,
        opsPerSec: many.rows.rlf,
      },
      {
        name: `sluice take, 1 policy, ${MANY_KEYS.toLocaleString("en")} keys in turn`,
        opsPerSec: turns.rows.sluice1,
      },
      {
        name: `rate-limiter-flexible consume, ${MANY_KEYS.toLocaleString("en")} keys in turn`,
        opsPerSec: turns.rows.rlf,
      },
    ],
    ratios: [
      { name: "sluice 1 policy (fixed window) / RLF", value: round(ratio("sluice1", "rlf")) },
      {
        name: "sluice 1 policy (token bucket) / RLF",
        value: round(ratio("bucket1", "rlf")),
        target: 1,
      },
      {
        name: "sluice 3 policies / RLF (1 policy)",
        value: round(ratio("sluice3", "rlf")),
        target: 0.7,
      },
      {
        name: "sluice 3 policies / limiter",
        value: round(ratio("sluice3", "limiter")),
        target: 0.5,
      },
      { name: "sluice 1 policy / limiter", value: round(ratio("sluice1", "limiter")) },
      { name: "sluice 1 policy / bottleneck", value: round(ratio("sluice1", "bottleneck")) },
      {
        name: "sluice 1 policy / RLF, object keys",
        value: round(objects.ratio("sluice1", "rlf")),
      },
      {
        name: `sluice 1 policy / RLF, ${MANY_KEYS.toLocaleString("en")} keys at random`,
        value: round(many.ratio("sluice1", "rlf")),
      },
      {
        name: `sluice 1 policy / RLF, ${MANY_KEYS.toLocaleString("en")} keys in turn`,
        value: round(turns.ratio("sluice1", "rlf")),
      },
    ],
    extra: {
      bytesPerLiveKey: heap.sluice1.marginal,
      bytesTarget: 200,
      liveKeys: LIVE_KEYS,
      heap,
    },
    notes: [
      `${KEYS.toLocaleString("en")} keys cycled; per row ${WARMUP_MS} ms warm-up, then ${ROUNDS} rounds of ${Math.round(MEASURE_MS / ROUNDS)} ms visiting every row in turn; a row is its median round, a ratio the median of its per-round ratios. One decision awaited at a time.`,
      "Every decision admits and writes. sluice's first single policy is a fixed window, the algorithm RateLimiterMemory uses; the second a token bucket.",
      "limiter answers synchronously (the await still costs a microtask); bottleneck is a job scheduler that goes through timers on every call, so its figure is latency-bound.",
      `Heap per live key (child process, GC forced, fixed store clock): sluice 1 policy ${heap.sluice1.marginal} B marginal / ${heap.sluice1.average} B average over the first ${LIVE_KEYS.toLocaleString("en")} keys; sluice 3 policies ${heap.sluice3.marginal} / ${heap.sluice3.average} B per user key; RLF ${heap.rlf.marginal} / ${heap.rlf.average} B.`,
      `Object keys: { tenant: "acme", user } over the ${KEYS.toLocaleString("en")} keys, a new object each call; RLF gets the two joined into one string (a user's own join). Rounds as above.`,
      `The last rows: ${MANY_KEYS.toLocaleString("en")} keys drawn at random (seeded), each decision a key's first or a return; then the same keys taken in turn, each coming back after all the others; rounds as above.`,
      "The average includes sluice's resolved-key cache (keys seen once: at most 32,768 entries); the marginal figure (keys 100,001 to 200,000) does not.",
    ],
  };
}

if (process.argv[2] === "--heap") await heapChild(process.argv[3]);
