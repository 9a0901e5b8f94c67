// A model of the Keap client's spike pacing against the simulator's `bucket` gateway, to tell
// which change to the client's timing could raise its share before building it (bench/NOTES.md,
// "the AIMD against `bucket`, modelled"). No I/O: seeded minutes, printed as a table.
//
//   node bench/src/keap-aimd-model.mjs
//
// The gateway: one bucket of one request per 40 ms (25 / s), each arrival stamped with the
// sender's whole millisecond (plus 0.3 ms on the way) and 0-4 ms of uniform jitter, as
// `startKeapSimulator({ spikeModel: "bucket", jitterMs: 4 })` stamps it.
//
// The client, as packages/adapter-keap/src/pacing.ts paces (KEAP.md "Settled 2026-12"): spacing
// S from 44.4 ms (10% margin); every 2 s without a spike 429, S * 0.995 down to 2% below the
// nominal rate; on a spike 429, S * 1.1. Sixteen workers keep a waiter on the spike slot at all
// times. The store counts whole milliseconds and the waiter asks again at the millisecond it was
// told, late by `phase` (where in that millisecond its timer started, uniform 0-1 ms; 0 for a
// waiter timed by the store's clock) plus an exponential lateness of mean `late` ms (timers, a
// busy event loop, a shared store's round trip).
//
// Spike slots, two ways:
//   - `one`: a bucket of one slot (what the client has): the next slot is one spacing after the
//     admission, so a late admission pushes every later slot.
//   - `tolerance T`: the next slot is one spacing after the previous slot, and an admission up to
//     T ms early is let through (a bucket with a fraction of a slot to spare, as a generic cell
//     rate algorithm keeps it).

const MINUTE_MS = 60_000;
const GATEWAY_MS = 40;
const JITTER_MS = 4;
const START_MS = 44.4;
const FLOOR_MS = 1000 / (25 * 0.98);
const RUNS = Number(process.env.RUNS ?? 300);

/** A small seeded generator (uniform in [0, 1)): the same minutes for every variant. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** One minute of pacing; returns the requests served and the spike 429s. */
function minute(seed, { toleranceMs, late, phase }) {
  const r = random(seed);
  let spacing = START_MS;
  let lastEventMs = 0;
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
      toleranceMs === undefined ? Math.ceil(admittedMs + spacing) : Math.ceil(slotMs - toleranceMs);
    const askedAt = Math.max(t, firstMs + phase * r() - Math.log(1 - r()) * late);
    const storeMs = Math.floor(askedAt);
    if (toleranceMs === undefined) admittedMs = storeMs;
    else slotMs = Math.max(slotMs, storeMs) + spacing;
    t = askedAt;
    const stamp = Math.floor(askedAt + 0.3) + r() * JITTER_MS;
    if (stamp > stampedMs) {
      tokens =
        stampedMs === Number.NEGATIVE_INFINITY
          ? 1
          : Math.min(1, tokens + (stamp - stampedMs) / GATEWAY_MS);
      stampedMs = stamp;
    }
    if (tokens >= 1) {
      tokens -= 1;
      served++;
    } else {
      spikes++;
      lastEventMs = t;
      spacing = Math.min(spacing * 1.1, START_MS * 8);
    }
    const steps = Math.floor((t - lastEventMs) / 2_000);
    if (steps > 0) {
      lastEventMs += steps * 2_000;
      spacing = Math.max(FLOOR_MS, spacing * 0.995 ** steps);
    }
  }
  return { served, spikes };
}

function share(variant) {
  let served = 0;
  let spikes = 0;
  for (let i = 1; i <= RUNS; i++) {
    const m = minute(i * 7919, variant);
    served += m.served;
    spikes += m.spikes;
  }
  const allowed = (MINUTE_MS / 1000) * 25;
  return `${((100 * served) / RUNS / allowed).toFixed(1)}% (${(spikes / RUNS).toFixed(1)})`;
}

const columns = [
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
