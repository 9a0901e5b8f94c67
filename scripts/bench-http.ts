// npm run bench:http: requests/s of Fastify and Express servers with @sluice/http against the
// same frameworks with @fastify/rate-limit and express-rate-limit, and bare, over loopback with
// autocannon. Each server runs in its own process; rows alternate within one run (rounds, each
// row once per round, in rotating order) and the median round counts. Limits are far above the
// load, so every request is admitted. Writes bench/results/http.json.
// HTTP_BENCH_SECONDS sets the length of one measurement (default 4), HTTP_BENCH_ROUNDS the rounds (3).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { ROWS, type Row } from "./http/bench-server.js";

const seconds = Number(process.env.HTTP_BENCH_SECONDS ?? 4);
const rounds = Number(process.env.HTTP_BENCH_ROUNDS ?? 3);
const connections = Number(process.env.HTTP_BENCH_CONNECTIONS ?? 32);
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `http-bench-${process.pid}-${Date.now()}`;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVER = fileURLToPath(new URL("./http/bench-server.ts", import.meta.url));

async function redisUp(): Promise<boolean> {
  const probe = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function startServer(row: Row): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER, row, redisUrl, prefix], {
    cwd: ROOT,
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

interface Measured {
  requestsPerSec: number;
  non2xx: number;
  errors: number;
  latencyP99Ms: number;
}

async function measure(url: string, durationS: number): Promise<Measured> {
  const r = await autocannon({ url, connections, duration: durationS });
  return {
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
const rows = ROWS.filter((r) => withRedis || !r.includes("(redis)"));
const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
  memoryGb: Math.round(totalmem() / 2 ** 30),
};
const startedAt = new Date().toISOString();
console.log(
  `Node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}; ${rounds} rounds x ${seconds} s, ${connections} connections, started ${startedAt}`,
);
if (!withRedis) console.log(`Redis at ${redisUrl} is unreachable: the Redis rows are skipped`);

const servers = new Map<Row, { child: ChildProcess; url: string }>();
for (const row of rows) servers.set(row, await startServer(row));
const samples = new Map<Row, Measured[]>(rows.map((r) => [r, []]));
try {
  for (const row of rows) await measure(servers.get(row)!.url, 1); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[(i + round) % rows.length]!;
      const m = await measure(servers.get(row)!.url, seconds);
      samples.get(row)!.push(m);
      console.log(
        `round ${round + 1}  ${row.padEnd(42)} ${Math.round(m.requestsPerSec).toLocaleString("en").padStart(8)} req/s  p99 ${m.latencyP99Ms} ms${m.non2xx + m.errors > 0 ? `  (${m.non2xx} non-2xx, ${m.errors} errors)` : ""}`,
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
}

const result = Object.fromEntries(
  rows.map((r) => {
    const ms = samples.get(r)!;
    return [
      r,
      {
        requestsPerSec: Math.round(median(ms.map((m) => m.requestsPerSec))),
        rounds: ms.map((m) => Math.round(m.requestsPerSec)),
        latencyP99Ms: median(ms.map((m) => m.latencyP99Ms)),
        refusedOrFailed: ms.reduce((a, m) => a + m.non2xx + m.errors, 0),
      },
    ];
  }),
) as Partial<Record<Row, { requestsPerSec: number }>>;

const ratio = (a: Row, b: Row) =>
  result[a] && result[b]
    ? Number((result[a].requestsPerSec / result[b].requestsPerSec).toFixed(3))
    : undefined;
const ratios = [
  {
    name: "Fastify: sluice / @fastify/rate-limit (memory)",
    value: ratio("fastify + @sluice/http (memory)", "fastify + @fastify/rate-limit (memory)"),
    target: 1,
  },
  {
    name: "Fastify: sluice / @fastify/rate-limit (Redis)",
    value: ratio("fastify + @sluice/http (redis)", "fastify + @fastify/rate-limit (redis)"),
    target: 1,
  },
  {
    name: "Express: sluice / express-rate-limit (memory)",
    value: ratio("express + @sluice/http (memory)", "express + express-rate-limit (memory)"),
    target: 1,
  },
  {
    name: "Fastify: sluice (memory) / bare",
    value: ratio("fastify + @sluice/http (memory)", "fastify bare"),
  },
  {
    name: "Fastify: @fastify/rate-limit (memory) / bare",
    value: ratio("fastify + @fastify/rate-limit (memory)", "fastify bare"),
  },
  {
    name: "Fastify: sluice (Redis) / bare",
    value: ratio("fastify + @sluice/http (redis)", "fastify bare"),
  },
  {
    name: "Fastify: @fastify/rate-limit (Redis) / bare",
    value: ratio("fastify + @fastify/rate-limit (redis)", "fastify bare"),
  },
  {
    name: "Express: sluice (memory) / bare",
    value: ratio("express + @sluice/http (memory)", "express bare"),
  },
  {
    name: "Express: express-rate-limit (memory) / bare",
    value: ratio("express + express-rate-limit (memory)", "express bare"),
  },
].filter((r) => r.value !== undefined);

console.log("");
for (const [row, r] of Object.entries(result)) {
  console.log(
    `${row.padEnd(42)} ${r.requestsPerSec.toLocaleString("en").padStart(8)} req/s (median)`,
  );
}
for (const r of ratios) {
  const verdict =
    r.target === undefined
      ? ""
      : r.value! >= r.target
        ? "  target >= 1.0 (met)"
        : "  target >= 1.0 (missed)";
  console.log(`${r.name.padEnd(48)} ${r.value!.toFixed(2)}x${verdict}`);
}

mkdirSync(new URL("../bench/results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("../bench/results/http.json", import.meta.url),
  `${JSON.stringify(
    {
      command: "npm run bench:http",
      startedAt,
      machine,
      settings: { seconds, rounds, connections, tool: "autocannon", sharedMachine: true },
      rows: result,
      ratios,
    },
    null,
    2,
  )}\n`,
);
console.log("\nwritten to bench/results/http.json");
