// A model of the Keap client's spike pacing against the simulator's `bucket` gateway, to tell
// which change to the client's timing could raise its share before building it (bench/NOTES.md,
// "the AIMD against `bucket`, modelled"). No I/O: seeded minutes, printed as a table.
//
//   npx tsx scripts/keap/aimd-model.ts
//
// The gateway: one bucket of one request per 40 ms (25 / s), each arrival stamped with the
// sender's whole millisecond (plus 0.3 ms on the way) and 0-4 ms of uniform jitter, as
// `startKeapSimulator({ spikeModel: "bucket", jitterMs: 4 })` stamps it.
//
// The client's pacing is the adapter's own (`SpikePacing`, OAuth's numbers): ticked after each
// answer that went through, slowed by each spike 429. Sixteen workers keep a waiter on the spike
// slot at all times. The store counts whole milliseconds and the waiter asks again at the
// millisecond it was told, late by `phase` (where in that millisecond its timer started, uniform
// 0-1 ms; 0 for a waiter timed by the store's clock) plus an exponential lateness of mean `late`
// ms (timers, a busy event loop, a shared store's round trip).
//
// Spike slots, two ways:
//   - one slot (what the client has): the next slot is one spacing after the admission, so a late
//     admission pushes every later slot.
//   - `toleranceMs`: the next slot is one spacing after the previous slot, and an admission up to
//     that many ms early is let through (a bucket with a fraction of a slot to spare, as a generic
//     cell rate algorithm keeps it).
import { SPIKE_MARGIN } from "@sluice/adapter-keap";
import { SpikePacing } from "../../packages/adapter-keap/src/pacing.js";

const MINUTE_MS = 60_000;
/** OAuth's spike rate (per second) and throttle (per minute). */
const SPIKE = 25;
const THROTTLE = 1_500;
const JITTER_MS = 4;
const RUNS = Number(process.env.RUNS ?? 300);

interface Variant {
  /** Mean exponential lateness of a waiter (ms). */
  late: number;
  /** 1: a waiter's timer starts anywhere in its millisecond; 0: timed by the store's clock. */
  phase: number;
  /** Slots by the schedule with this tolerance (ms); absent: one slot after each admission. */
  toleranceMs?: number;
}

/** A small seeded generator (uniform in [0, 1)): the same minutes for every variant. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** One minute of pacing; returns the requests served and the spike 429s. */
function minute(seed: number, { toleranceMs, late, phase }: Variant) {
  const r = random(seed);
  const pacing = new SpikePacing(SPIKE, SPIKE_MARGIN, false, 0, MINUTE_MS / THROTTLE, MINUTE_MS);
  let served = 0;
  let spikes = 0;
  // The gateway's bucket.
  let tokens = 1;
  let stampedMs = Number.NEGATIVE_INFINITY;
  // The store: last admission (whole ms), or the next slot by the schedule.
  let admittedMs = Number.NEGATIVE_INFINITY;
  let slotMs = 0;
  let t = 0;
  while (t < MINUTE_MS) {
    const firstMs =
      toleranceMs === undefined
        ? Math.ceil(admittedMs + pacing.spacingMs)
        : Math.ceil(slotMs - toleranceMs);
    const askedAt = Math.max(t, firstMs + phase * r() - Math.log(1 - r()) * late);
    const storeMs = Math.floor(askedAt);
    if (toleranceMs === undefined) admittedMs = storeMs;
    else slotMs = Math.max(slotMs, storeMs) + pacing.spacingMs;
    t = askedAt;
    const stamp = Math.floor(askedAt + 0.3) + r() * JITTER_MS;
    if (stamp > stampedMs) {
      tokens =
        stampedMs === Number.NEGATIVE_INFINITY
          ? 1
          : Math.min(1, tokens + ((stamp - stampedMs) * SPIKE) / 1000);
      stampedMs = stamp;
    }
    if (tokens >= 1) {
      tokens -= 1;
      served++;
      pacing.tick(t);
    } else {
      spikes++;
      pacing.onSpike(undefined, t);
    }
  }
  return { served, spikes };
}

function share(variant: Variant): string {
  let served = 0;
  let spikes = 0;
  for (let i = 1; i <= RUNS; i++) {
    const m = minute(i * 7919, variant);
    served += m.served;
    spikes += m.spikes;
  }
  const allowed = (MINUTE_MS / 1000) * SPIKE;
  return `${((100 * served) / RUNS / allowed).toFixed(1)}% (${(spikes / RUNS).toFixed(1)})`;
}

const columns: [string, Omit<Variant, "late">][] = [
  ["one slot", { phase: 1 }],
  ["tolerance 0.5 ms", { phase: 1, toleranceMs: 0.5 }],
  ["tolerance 1 ms", { phase: 1, toleranceMs: 1 }],
  ["tolerance 2 ms", { phase: 1, toleranceMs: 2 }],
  ["one slot, store-timed", { phase: 0 }],
];
console.log(
  `share of 1,500 a minute (spike 429s a minute), mean of ${RUNS} seeded minutes\n` +
    `late (ms) | ${columns.map(([name]) => name).join(" | ")}`,
);
for (const late of [0.2, 0.4, 0.8, 1.5]) {
  const cells = columns.map(([, v]) => share({ ...v, late }));
  console.log(`${late} | ${cells.join(" | ")}`);
}
