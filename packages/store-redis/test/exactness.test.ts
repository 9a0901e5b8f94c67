import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { REDIS_URL, redisReachable, uniquePrefix } from "./helpers.js";

const reachable = await redisReachable();
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const WORKER = fileURLToPath(new URL("./fixtures/exact-worker.ts", import.meta.url));
const PROCESSES = 4;
const ATTEMPTS = 250; // per scenario and process: 1000 in all, twice the largest limit

interface WorkerReport {
  fixed: number;
  pool: number;
  bucket: number;
  intervals: [number, number][];
}

function startWorker(prefix: string): {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<WorkerReport>;
} {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", WORKER, REDIS_URL, prefix, String(ATTEMPTS)],
    {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let out = "";
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<WorkerReport>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.startsWith("ready\n")) onReady();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (code === 0 && line) resolve(JSON.parse(line) as WorkerReport);
      else reject(new Error(`worker exited with ${code}: ${out}`));
    });
  });
  return { child, ready, done };
}

/** Most holders at any instant; a release and an acquire in the same ms do not overlap. */
function maxOverlap(intervals: readonly [number, number][]): number {
  const events: [number, number][] = [];
  for (const [a, r] of intervals) events.push([a, 1], [r, -1]);
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d));
  return most;
}

describe.skipIf(!reachable)("exactness under contention", () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it("4 processes x 32 in flight admit exactly the limit, and never more than 5 slot holders", async () => {
    const prefix = uniquePrefix("exact");
    const workers = Array.from({ length: PROCESSES }, () => startWorker(prefix));
    children.push(...workers.map((w) => w.child));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.stdin!.end("go\n");
    const reports = await Promise.all(workers.map((w) => w.done));
    const sum = (f: (r: WorkerReport) => number) => reports.reduce((n, r) => n + f(r), 0);
    expect(sum((r) => r.fixed)).toBe(500);
    expect(sum((r) => r.pool)).toBe(300);
    expect(sum((r) => r.bucket)).toBe(200);
    const intervals = reports.flatMap((r) => r.intervals);
    expect(intervals.length).toBeGreaterThanOrEqual(160);
    expect(maxOverlap(intervals)).toBeLessThanOrEqual(5);
    // Every lease was released: the semaphore's key is gone.
    const client = new Redis(REDIS_URL);
    try {
      expect(await client.keys(`${prefix}*sem*`)).toEqual([]);
    } finally {
      client.disconnect();
    }
  }, 60_000);
});
