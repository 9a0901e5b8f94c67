// Instructions per take, counted by callgrind: repeatable on a loaded machine, where wall-clock
// figures swing 2x. Run each subject twice, with N and with 0 takes after the same warm-up, and
// divide the difference of the two totals by N (after `npm run build`):
//
//   for n in 0 200000; do
//     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-$n node --single-threaded --expose-gc \
//       bench/src/instructions.mjs sluice3 $n 2>&1 | grep Collected
//   done
//
// Or, steadier (the warm-up's JIT and GC timing move the 0-take total by a few hundred
// instructions per take between runs): one run with the measured loop between two marks, whose
// dump (the second of three) holds the loop alone; divide its total by N:
//
//   valgrind --tool=callgrind --dump-before=uv_resident_set_memory \
//     --callgrind-out-file=/tmp/cg-loop node --single-threaded --expose-gc \
//     bench/src/instructions.mjs sluice3 200000
//   grep totals: /tmp/cg-loop.2
//
// Subjects: sluice1 (token bucket), sluice3 (bucket + minute + day), rlf (RateLimiterMemory
// .consume), limiter (RateLimiter.tryRemoveTokens, one per key in a Map). 10,000 keys, one take
// awaited at a time, as in bench/src/memory.mjs.
//
// Bytes allocated per take (the new space's growth over the loop, no collection in between):
//
//   node --expose-gc --max-semi-space-size=256 --min-semi-space-size=256 \
//     bench/src/instructions.mjs sluice3 20000 bytes
import v8 from "node:v8";
import { createLimiter } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { RateLimiter } from "limiter";
import { RateLimiterMemory } from "rate-limiter-flexible";

const [subject = "sluice3", nArg = "200000", mode = "count"] = process.argv.slice(2);
const KEYS = 10_000;
const WARMUP = 100_000;

// Under valgrind a take runs ~50x slower: the store clock runs 1024x slower than the wall clock, so
// the bucket stays partly drained between visits and windows roll as rarely as in a native run.
// rate-limiter-flexible gets a 1 h duration for the same reason (a key that expires is re-created).
const T0 = Date.now();
const clock = () => T0 + (Date.now() - T0) / 1024;
const BUCKET = {
  kind: "tokenBucket",
  name: "burst",
  capacity: 1e6,
  refill: { tokens: 1_000, every: "1m" },
};
const THREE = [
  BUCKET,
  { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
  { kind: "fixedWindow", name: "day", limit: 1e9, window: "1d" },
];

const subjects = {
  sluice1: () => {
    const l = createLimiter({ store: memoryStore({ clock }), policies: [BUCKET] });
    return (k) => l.take(k);
  },
  sluice3: () => {
    const l = createLimiter({ store: memoryStore({ clock }), policies: THREE });
    return (k) => l.take(k);
  },
  rlf: () => {
    const r = new RateLimiterMemory({ points: 1e9, duration: 3600 });
    return (k) => r.consume(k);
  },
  limiter: () => {
    const buckets = new Map();
    return (k) => {
      let b = buckets.get(k);
      if (b === undefined) {
        b = new RateLimiter({ tokensPerInterval: 1e9, interval: "minute" });
        buckets.set(k, b);
      }
      return b.tryRemoveTokens(1);
    };
  },
};

const op = subjects[subject]?.();
if (op === undefined) throw new Error(`unknown subject ${subject}: ${Object.keys(subjects)}`);
const ids = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
let cursor = 0;
let admitted = 0;

async function loop(n) {
  for (let i = 0; i < n; i++) {
    if (await op(ids[cursor])) admitted++;
    cursor = cursor === KEYS - 1 ? 0 : cursor + 1;
  }
}

await loop(WARMUP);
// A full collection before and after the measured takes: the two runs differ by the loop only.
globalThis.gc();
if (mode === "bytes") {
  // Bytes allocated per take (no valgrind): the heap's growth over the loop, with a new space
  // large enough that no collection runs in it (the script checks).
  let collections = 0;
  new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  }).observe({ entryTypes: ["gc"] });
  // The new space only: the JIT's code and metadata, compiled during the loop, go elsewhere.
  const used = () =>
    v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_used_size;
  const before = used();
  await loop(Number(nArg));
  const grown = used() - before;
  await new Promise((resolve) => setTimeout(resolve, 10));
  if (collections > 0) throw new Error("a collection ran: raise --max-semi-space-size");
  process.stdout.write(`${subject}: ${(grown / Number(nArg)).toFixed(1)} bytes per take\n`);
} else {
  // Marks for `--dump-before=uv_resident_set_memory`: nothing else calls it.
  process.memoryUsage.rss();
  await loop(Number(nArg));
  process.memoryUsage.rss();
  globalThis.gc();
  process.stdout.write(`${subject}: ${admitted} admitted\n`);
}
