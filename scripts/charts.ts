// Generates the concept pictures in docs/images from the reference math, driven through a real
// limiter on a memory store with a simulated clock. Run: npx tsx scripts/charts.ts
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createLimiter, type Lease, type Policy } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";

/** 2026-01-01T00:00:00Z: a multiple of every window used below, so calendar windows start at 0. */
const T0 = 1_767_225_600_000;
/** Every request time in the schedules below is a multiple of it. */
const SAMPLE_MS = 50;

interface Point {
  t: number;
  v: number;
}
interface Request {
  t: number;
  v: number;
  allowed: boolean;
}
interface Series {
  limit: number;
  curve: Point[];
  requests: Request[];
}

type Action = (at: number) => Promise<void>;

async function simulate(
  policy: Policy,
  durationMs: number,
  schedule: (take: (cost?: number) => Action) => Map<number, Action[]>,
  startMs = T0,
  sampleMs = SAMPLE_MS,
): Promise<Series> {
  let now = startMs;
  const limiter = createLimiter({ store: memoryStore({ clock: () => now }), policies: [policy] });
  const limit = "capacity" in policy ? policy.capacity : policy.limit;
  const curve: Point[] = [];
  const requests: Request[] = [];
  const remainingNow = async () => (await limiter.peek("chart")).policies[0]!.remaining;
  const take =
    (cost = 1): Action =>
    async (at) => {
      const d = await limiter.take("chart", { cost });
      requests.push({ t: at, v: d.policies[0]!.remaining, allowed: d.allowed });
    };
  const actions = schedule(take);
  for (let t = 0; t <= durationMs; t += sampleMs) {
    now = startMs + t;
    curve.push({ t, v: await remainingNow() });
    for (const act of actions.get(t) ?? []) await act(t);
    if ((actions.get(t)?.length ?? 0) > 0) curve.push({ t, v: await remainingNow() });
  }
  return { limit, curve, requests };
}

function at(entries: [number, Action][]): Map<number, Action[]> {
  const map = new Map<number, Action[]>();
  for (const [t, a] of entries) {
    const list = map.get(t) ?? [];
    list.push(a);
    map.set(t, list);
  }
  return map;
}

/** `count` requests, `gapMs` apart, starting at `startMs`. */
function burst(take: () => Action, startMs: number, count: number, gapMs: number) {
  return Array.from({ length: count }, (_, i): [number, Action] => [startMs + i * gapMs, take()]);
}

// ---- SVG --------------------------------------------------------------------------------------

const W = 760;
const H = 340;
const M = { left: 56, right: 20, top: 44, bottom: 78 };
const fmt = (n: number) => (Math.round(n * 10) / 10).toString();
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface TimeAxis {
  label: string;
  unitMs: number;
  step: number;
}
const SECONDS: TimeAxis = { label: "time (s)", unitMs: 1000, step: 2 };

function renderSvg(
  title: string,
  yLabel: string,
  durationMs: number,
  s: Series,
  axis: TimeAxis = SECONDS,
): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (t: number) => M.left + (t / durationMs) * pw;
  const y = (v: number) => M.top + ph - (v / s.limit) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  // Grid and axes.
  for (let u = 0; u * axis.unitMs <= durationMs; u += axis.step) {
    const gx = fmt(x(u * axis.unitMs));
    out.push(
      `<line x1="${gx}" y1="${M.top}" x2="${gx}" y2="${M.top + ph}" stroke="#eeeeee"/>`,
      `<text x="${gx}" y="${M.top + ph + 16}" text-anchor="middle">${u}</text>`,
    );
  }
  const yStep = s.limit <= 10 ? 1 : 2;
  for (let v = 0; v <= s.limit; v += yStep) {
    const gy = fmt(y(v));
    out.push(
      `<line x1="${M.left}" y1="${gy}" x2="${M.left + pw}" y2="${gy}" stroke="#eeeeee"/>`,
      `<text x="${M.left - 8}" y="${fmt(y(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  out.push(
    `<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="#333333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="#333333"/>`,
    `<text x="${M.left + pw / 2}" y="${M.top + ph + 34}" text-anchor="middle">${axis.label}</text>`,
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  // Remaining, as a step line: it holds its value until the next sample.
  const pts: string[] = [];
  let prev: Point | undefined;
  for (const p of s.curve) {
    if (prev && prev.v !== p.v) pts.push(`${fmt(x(p.t))},${fmt(y(prev.v))}`);
    pts.push(`${fmt(x(p.t))},${fmt(y(p.v))}`);
    prev = p;
  }
  out.push(
    `<polyline points="${pts.join(" ")}" fill="none" stroke="#2563eb" stroke-width="2" stroke-linejoin="round"/>`,
  );
  for (const r of s.requests) {
    const cx = x(r.t);
    const cy = y(r.v);
    if (r.allowed) {
      out.push(`<circle cx="${fmt(cx)}" cy="${fmt(cy)}" r="4" fill="#16a34a"/>`);
    } else {
      const d = 4;
      out.push(
        `<path d="M${fmt(cx - d)} ${fmt(cy - d)}L${fmt(cx + d)} ${fmt(cy + d)}M${fmt(cx - d)} ${fmt(cy + d)}L${fmt(cx + d)} ${fmt(cy - d)}" stroke="#dc2626" stroke-width="2"/>`,
      );
    }
  }
  // Legend.
  const ly = H - 16;
  out.push(
    `<line x1="${M.left}" y1="${ly - 4}" x2="${M.left + 24}" y2="${ly - 4}" stroke="#2563eb" stroke-width="2"/>`,
    `<text x="${M.left + 30}" y="${ly}">${esc(yLabel)}</text>`,
    `<circle cx="${M.left + 220}" cy="${ly - 4}" r="4" fill="#16a34a"/>`,
    `<text x="${M.left + 230}" y="${ly}">admitted request</text>`,
    `<path d="M${M.left + 356} ${ly - 8}L${M.left + 364} ${ly}M${M.left + 356} ${ly}L${M.left + 364} ${ly - 8}" stroke="#dc2626" stroke-width="2"/>`,
    `<text x="${M.left + 370}" y="${ly}">refused request</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}

/** One bar per row, longest first as given; used for the benchmark results of the docs site. */
export function renderBarChart(
  title: string,
  unit: string,
  rows: readonly { name: string; value: number; highlight?: boolean }[],
): string {
  const rowH = 26;
  const left = 330;
  const right = 110;
  const top = 44;
  const h = top + rows.length * rowH + 16;
  const max = Math.max(...rows.map((r) => r.value), 1);
  const pw = W - left - right;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${h}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const bw = Math.max(1, (r.value / max) * pw);
    const label = r.name.length > 52 ? `${r.name.slice(0, 51)}…` : r.name;
    out.push(
      `<text x="${left - 8}" y="${fmt(y + 16)}" text-anchor="end">${esc(label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${fmt(bw)}" height="${rowH - 8}" fill="${r.highlight ? "#2563eb" : "#9ca3af"}"/>`,
      `<text x="${fmt(left + bw + 6)}" y="${fmt(y + 16)}">${esc(`${r.value.toLocaleString("en")} ${unit}`)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

// ---- charts -----------------------------------------------------------------------------------

async function tokenBucketChart(): Promise<string> {
  const policy: Policy = {
    kind: "tokenBucket",
    name: "api",
    capacity: 6,
    refill: { tokens: 1, every: "1s" },
  };
  const s = await simulate(policy, 20_000, (take) =>
    at([
      ...burst(take, 1000, 9, 200),
      ...burst(take, 6000, 4, 1000),
      ...burst(take, 14_000, 6, 300),
    ]),
  );
  return renderSvg(
    "tokenBucket: capacity 6, refill 1 token every 1s (continuous)",
    "remaining tokens",
    20_000,
    s,
  );
}

async function poolChart(): Promise<string> {
  const policy: Policy = {
    kind: "pool",
    name: "api",
    capacity: 6,
    refill: { tokens: 2, every: "4s" },
  };
  const s = await simulate(policy, 20_000, (take) =>
    at([
      ...burst(take, 1500, 8, 200),
      ...burst(take, 7000, 3, 700),
      ...burst(take, 14_500, 5, 300),
    ]),
  );
  return renderSvg(
    "pool: capacity 6, +2 every 4s counted from the first drop below full",
    "remaining tokens",
    20_000,
    s,
  );
}

async function fixedWindowChart(): Promise<string> {
  const policy: Policy = { kind: "fixedWindow", name: "api", limit: 5, window: "5s" };
  const s = await simulate(policy, 20_000, (take) =>
    at([
      ...burst(take, 1000, 7, 400),
      ...burst(take, 6500, 3, 1000),
      ...burst(take, 13_000, 8, 250),
    ]),
  );
  return renderSvg(
    "fixedWindow: limit 5 per 5s window (calendar aligned)",
    "remaining in window",
    20_000,
    s,
  );
}

/** 2026-03-07 00:00 in New York (EST, UTC-5); clocks go forward at 02:00 on 2026-03-08. */
const NY_START = Date.parse("2026-03-07T05:00:00Z");
const HOUR = 3_600_000;

async function newYorkDayChart(): Promise<string> {
  const policy: Policy = {
    kind: "fixedWindow",
    name: "daily",
    limit: 5,
    window: "1d",
    timeZone: "America/New_York",
  };
  const hours = (h: number) => Math.round(h * HOUR);
  const s = await simulate(
    policy,
    hours(72),
    (take) =>
      at([
        ...burst(take, hours(2), 6, hours(3)),
        ...burst(take, hours(40), 6, hours(1)),
        [hours(46.5), take()],
        [hours(47.5), take()],
        ...burst(take, hours(60), 5, hours(2)),
      ]),
    NY_START,
    15 * 60_000,
  );
  return renderSvg(
    "fixedWindow 1d in America/New_York: the day of 2026-03-08 lasts 23 hours",
    "remaining today",
    hours(72),
    s,
    {
      label: "hours from 2026-03-07 00:00 New York time (days start at 0, 24, 47, 71)",
      unitMs: HOUR,
      step: 6,
    },
  );
}

async function slidingWindowChart(): Promise<string> {
  const policy: Policy = {
    kind: "slidingWindow",
    name: "api",
    limit: 5,
    window: "5s",
    precision: "1s",
  };
  const s = await simulate(policy, 20_000, (take) =>
    at([
      ...burst(take, 1000, 7, 400),
      ...burst(take, 6500, 3, 1000),
      ...burst(take, 13_000, 8, 250),
    ]),
  );
  return renderSvg(
    "slidingWindow: limit 5 in any 5s span, 1s slots",
    "remaining in window",
    20_000,
    s,
  );
}

async function concurrencyChart(): Promise<string> {
  let now = T0;
  const policy: Policy = { kind: "concurrency", name: "jobs", limit: 3, leaseTtl: "8s" };
  const limiter = createLimiter({ store: memoryStore({ clock: () => now }), policies: [policy] });
  const durationMs = 20_000;
  const held = new Map<string, Lease>();
  const curve: Point[] = [];
  const requests: Request[] = [];
  const free = async () => (await limiter.peek("chart")).policies[0]!.remaining;
  const acquire = (name: string) => async (t: number) => {
    const { decision, lease } = await limiter.tryAcquire("chart");
    if (lease) held.set(name, lease);
    requests.push({ t, v: decision.policies[0]!.remaining, allowed: decision.allowed });
  };
  const release = (name: string) => async () => {
    await held.get(name)?.release();
  };
  // "c" is never released: its slot comes back when its lease expires, 8 s after it was taken.
  const actions = new Map<number, ((t: number) => Promise<void>)[]>([
    [1000, [acquire("a")]],
    [2000, [acquire("b")]],
    [3000, [acquire("c")]],
    [4000, [acquire("x")]],
    [5000, [release("a")]],
    [6000, [acquire("d")]],
    [7000, [acquire("y")]],
    [8000, [release("b")]],
    [9000, [release("d")]],
    [12_000, [acquire("e")]],
    [12_500, [acquire("f")]],
    [13_000, [acquire("g")]],
    [14_000, [acquire("z")]],
    [16_000, [release("e")]],
    [17_000, [release("f"), release("g")]],
  ]);
  for (let t = 0; t <= durationMs; t += SAMPLE_MS) {
    now = T0 + t;
    curve.push({ t, v: await free() });
    const list = actions.get(t);
    if (!list) continue;
    for (const act of list) await act(t);
    curve.push({ t, v: await free() });
  }
  return renderSvg(
    "concurrency: limit 3, leaseTtl 8s; one lease (taken at 3s) is never released",
    "free slots",
    durationMs,
    { limit: 3, curve, requests },
  );
}

export async function renderCharts(): Promise<Record<string, string>> {
  return {
    "token-bucket.svg": await tokenBucketChart(),
    "pool.svg": await poolChart(),
    "fixed-window.svg": await fixedWindowChart(),
    "fixed-window-new-york.svg": await newYorkDayChart(),
    "sliding-window.svg": await slidingWindowChart(),
    "concurrency.svg": await concurrencyChart(),
  };
}

export const imagesDir = fileURLToPath(new URL("../docs/images/", import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const charts = await renderCharts();
  mkdirSync(imagesDir, { recursive: true });
  for (const [name, svg] of Object.entries(charts)) writeFileSync(imagesDir + name, svg);
  console.log(`wrote ${Object.keys(charts).length} charts to docs/images`);
}
