// npm run bench:http: requests/s of Fastify and Express servers with @sluice/http against the
// same frameworks with @fastify/rate-limit and express-rate-limit, and bare, over loopback with
// autocannon. Each server runs in its own process; rows alternate within one run (rounds, each
// row once per round, in rotating order) and the median round counts. Limits are far above the
// load, so every request is admitted. Writes bench/results/http.json.
// HTTP_BENCH_SECONDS sets the length of one measurement (default 2), HTTP_BENCH_ROUNDS the rounds
// (default 9). Where `taskset` is, the servers run on core 1 and autocannon on core 0
// (HTTP_BENCH_PIN=0: not pinned). Without REDIS_URL the Redis rows run on a redis-server of their
// own on a free loopback port (the shared one's other users would be part of the measurement).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { ROWS, type Row } from "./http/bench-server.js";

const seconds = Number(process.env.HTTP_BENCH_SECONDS ?? 2);
const rounds = Number(process.env.HTTP_BENCH_ROUNDS ?? 9);
const connections = Number(process.env.HTTP_BENCH_CONNECTIONS ?? 32);
const ownRedis = process.env.REDIS_URL === undefined ? await startOwnRedis() : undefined;
const redisUrl = process.env.REDIS_URL ?? ownRedis?.url ?? "redis://127.0.0.1:6379";
const prefix = `http-bench-${process.pid}-${Date.now()}`;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVER = fileURLToPath(new URL("./http/bench-server.ts", import.meta.url));
// The root tsconfig maps @sluice/* to the TypeScript sources, which tsx would then transpile on
// the fly (with keepNames: a defineProperty per named closure). This one has no such paths: the
// servers import the built packages, as users do and as the other libraries are measured.
const SERVER_TSCONFIG = fileURLToPath(new URL("./http/tsconfig.json", import.meta.url));

/** A redis-server of the bench's own on a free port, or undefined when none is installed. */
async function startOwnRedis(): Promise<{ url: string; pid: number; stop(): void } | undefined> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-redis-"));
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { cwd: dir, stdio: "ignore" },
  );
  const failed = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(true));
    setTimeout(() => resolve(false), 300);
  });
  if (failed) return undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    stop() {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether Redis answers a PING within 3 s (a fresh redis-server takes a moment). */
async function redisUp(): Promise<boolean> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const probe = new Redis(redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      return true;
    } catch {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      probe.disconnect();
    }
  }
}

/**
 * Whether the servers run on a core of their own, away from the load generator (this process):
 * on a machine of two cores, a server and autocannon scheduled onto one core by turns make the
 * rounds' figures swing far more than the rows differ. On by default where `taskset` and two or
 * more cores are there; HTTP_BENCH_PIN=0 turns it off.
 */
const pin =
  process.env.HTTP_BENCH_PIN !== "0" &&
  cpus().length >= 2 &&
  spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" }).status ===
    0;

function startServer(row: Row): Promise<{ child: ChildProcess; url: string }> {
  const node = [process.execPath, "--import", "tsx", SERVER, row, redisUrl, prefix];
  const [command, ...args] = pin ? ["taskset", "-c", "1", ...node] : node;
  const child = spawn(command!, args, {
    cwd: ROOT,
    env: { ...process.env, TSX_TSCONFIG_PATH: SERVER_TSCONFIG },
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const port = Number.parseInt(out, 10);
      if (out.includes("\n") && port > 0) resolve({ child, url: `http://127.0.0.1:${port}/` });
    });
    child.on("exit", (code) => reject(new Error(`${row}: server exited with ${code}`)));
  });
}

/**
 * CPU time (user + system, ms) a server process has used, from /proc on Linux. On a shared
 * machine requests/s swing with whatever else runs; the server's CPU per request does much less.
 */
function cpuMs(pid: number): number | undefined {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return undefined;
  const fields = readFileSync(file, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

interface Measured {
  /** Server CPU per completed request, µs (undefined off Linux). */
  cpuUsPerRequest: number | undefined;
  /**
   * The own redis-server's CPU per completed request, µs (Redis rows with the bench's own
   * redis-server only): on one machine it competes with the server and autocannon for the cores.
   */
  redisCpuUsPerRequest: number | undefined;
  requestsPerSec: number;
  non2xx: number;
  errors: number;
  latencyP99Ms: number;
}

async function measure(
  server: { child: ChildProcess; url: string },
  durationS: number,
  redisRow: boolean,
): Promise<Measured> {
  const redisPid = redisRow ? ownRedis?.pid : undefined;
  const before = cpuMs(server.child.pid!);
  const redisBefore = redisPid === undefined ? undefined : cpuMs(redisPid);
  const r = await autocannon({ url: server.url, connections, duration: durationS });
  const after = cpuMs(server.child.pid!);
  const redisAfter = redisPid === undefined ? undefined : cpuMs(redisPid);
  return {
    redisCpuUsPerRequest:
      redisBefore === undefined || redisAfter === undefined || r.requests.total === 0
        ? undefined
        : Math.round(((redisAfter - redisBefore) * 1000) / r.requests.total),
    cpuUsPerRequest:
      before === undefined || after === undefined || r.requests.total === 0
        ? undefined
        : Math.round(((after - before) * 1000) / r.requests.total),
    requestsPerSec: r.requests.average,
    non2xx: r.non2xx,
    errors: r.errors,
    latencyP99Ms: r.latency.p99,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const withRedis = await redisUp();
// HTTP_BENCH_ROWS: only the rows whose name contains one of these comma-separated words.
const only = process.env.HTTP_BENCH_ROWS?.split(",").filter((w) => w !== "");
const rows = ROWS.filter(
  (r) =>
    (withRedis || !r.includes("(redis)")) &&
    (only === undefined || only.some((w) => r.includes(w))),
);
const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
  memoryGb: Math.round(totalmem() / 2 ** 30),
};
const startedAt = new Date().toISOString();
console.log(
  `Node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}; ${rounds} rounds x ${seconds} s, ${connections} connections, ${pin ? "servers on core 1, autocannon on core 0" : "not pinned"}, started ${startedAt}`,
);
if (!withRedis) console.log(`Redis at ${redisUrl} is unreachable: the Redis rows are skipped`);

const servers = new Map<Row, { child: ChildProcess; url: string }>();
for (const row of rows) servers.set(row, await startServer(row));
const samples = new Map<Row, Measured[]>(rows.map((r) => [r, []]));
try {
  for (const row of rows) await measure(servers.get(row)!, 2, false); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[(i + round) % rows.length]!;
      const m = await measure(servers.get(row)!, seconds, row.includes("(redis)"));
      samples.get(row)!.push(m);
      console.log(
        `round ${round + 1}  ${row.padEnd(42)} ${Math.round(m.requestsPerSec).toLocaleString("en").padStart(8)} req/s  ${m.cpuUsPerRequest ?? "?"} µs CPU/req${m.redisCpuUsPerRequest === undefined ? "" : ` (+${m.redisCpuUsPerRequest} µs Redis)`}  p99 ${m.latencyP99Ms} ms${m.non2xx + m.errors > 0 ? `  (${m.non2xx} non-2xx, ${m.errors} errors)` : ""}`,
      );
    }
  }
} finally {
  for (const { child } of servers.values()) child.stdin!.end();
  if (withRedis) {
    const client = new Redis(redisUrl);
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  }
  ownRedis?.stop();
}

const result = Object.fromEntries(
  rows.map((r) => {
    const ms = samples.get(r)!;
    return [
      r,
      {
        requestsPerSec: Math.round(median(ms.map((m) => m.requestsPerSec))),
        cpuUsPerRequest: ms.every((m) => m.cpuUsPerRequest !== undefined)
          ? median(ms.map((m) => m.cpuUsPerRequest!))
          : undefined,
        redisCpuUsPerRequest: ms.every((m) => m.redisCpuUsPerRequest !== undefined)
          ? median(ms.map((m) => m.redisCpuUsPerRequest!))
          : undefined,
        rounds: ms.map((m) => Math.round(m.requestsPerSec)),
        latencyP99Ms: median(ms.map((m) => m.latencyP99Ms)),
        refusedOrFailed: ms.reduce((a, m) => a + m.non2xx + m.errors, 0),
      },
    ];
  }),
) as Partial<
  Record<
    Row,
    {
      requestsPerSec: number;
      cpuUsPerRequest: number | undefined;
      redisCpuUsPerRequest: number | undefined;
    }
  >
>;

/**
 * The median of the rounds' ratios: the two rows of a comparison run one after the other in every
 * round, so each round's ratio compares two moments seconds apart, where the rows' own medians may
 * come from rounds minutes apart on a machine whose speed drifts.
 */
const perRound = (
  a: Row,
  b: Row,
  value: (ours: Measured, theirs: Measured) => number | undefined,
) => {
  const xs = samples.get(a);
  const ys = samples.get(b);
  if (xs === undefined || ys === undefined) return undefined;
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const r = value(xs[i]!, ys[i]!);
    if (r === undefined || !Number.isFinite(r)) return undefined;
    ratios.push(r);
  }
  return ratios.length === 0 ? undefined : Number(median(ratios).toFixed(3));
};
const ratio = (a: Row, b: Row) =>
  perRound(a, b, (ours, theirs) => ours.requestsPerSec / theirs.requestsPerSec);
/** The same comparison by server CPU per request (theirs / ours: above 1 means sluice is cheaper). */
const cpuRatio = (a: Row, b: Row) =>
  perRound(a, b, (ours, theirs) =>
    ours.cpuUsPerRequest && theirs.cpuUsPerRequest
      ? theirs.cpuUsPerRequest / ours.cpuUsPerRequest
      : undefined,
  );
const COMPARISONS: [name: string, ours: Row, theirs: Row, target?: number][] = [
  [
    "Fastify: sluice / @fastify/rate-limit (memory)",
    "fastify + @sluice/http (memory)",
    "fastify + @fastify/rate-limit (memory)",
    1,
  ],
  [
    "Fastify: sluice / @fastify/rate-limit (Redis)",
    "fastify + @sluice/http (redis)",
    "fastify + @fastify/rate-limit (redis)",
    1,
  ],
  [
    "Express: sluice / express-rate-limit (memory)",
    "express + @sluice/http (memory)",
    "express + express-rate-limit (memory)",
    1,
  ],
  ["Fastify: sluice (memory) / bare", "fastify + @sluice/http (memory)", "fastify bare"],
  [
    "Fastify: @fastify/rate-limit (memory) / bare",
    "fastify + @fastify/rate-limit (memory)",
    "fastify bare",
  ],
  ["Fastify: sluice (Redis) / bare", "fastify + @sluice/http (redis)", "fastify bare"],
  [
    "Fastify: @fastify/rate-limit (Redis) / bare",
    "fastify + @fastify/rate-limit (redis)",
    "fastify bare",
  ],
  ["Express: sluice (memory) / bare", "express + @sluice/http (memory)", "express bare"],
  [
    "Express: express-rate-limit (memory) / bare",
    "express + express-rate-limit (memory)",
    "express bare",
  ],
];
const ratios = COMPARISONS.map(([name, ours, theirs, target]) => ({
  name,
  value: ratio(ours, theirs),
  byCpu: cpuRatio(ours, theirs),
  target,
})).filter((r) => r.value !== undefined);

console.log("");
for (const [row, r] of Object.entries(result)) {
  console.log(
    `${row.padEnd(42)} ${r.requestsPerSec.toLocaleString("en").padStart(8)} req/s (median)  ${r.cpuUsPerRequest ?? "?"} µs CPU/req${r.redisCpuUsPerRequest === undefined ? "" : ` (+${r.redisCpuUsPerRequest} µs Redis)`}`,
  );
}
for (const r of ratios) {
  const verdict =
    r.target === undefined
      ? ""
      : r.value! >= r.target
        ? "  target >= 1.0 (met)"
        : "  target >= 1.0 (missed)";
  const cpu = r.byCpu === undefined ? "" : `   by CPU per request ${r.byCpu.toFixed(2)}x`;
  console.log(`${r.name.padEnd(48)} ${r.value!.toFixed(2)}x${verdict}${cpu}`);
}

mkdirSync(new URL("../bench/results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("../bench/results/http.json", import.meta.url),
  `${JSON.stringify(
    {
      command: "npm run bench:http",
      startedAt,
      machine,
      settings: {
        seconds,
        rounds,
        connections,
        tool: "autocannon",
        cores: pin ? "servers on core 1, autocannon on core 0" : "not pinned",
        redis: ownRedis === undefined ? "REDIS_URL" : "own redis-server",
        sharedMachine: true,
      },
      rows: result,
      ratios,
    },
    null,
    2,
  )}\n`,
);
console.log("\nwritten to bench/results/http.json");
