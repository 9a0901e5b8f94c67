import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FRAMEWORKS } from "./apps.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const SERVER = fileURLToPath(new URL("./fixtures/shared-redis-server.ts", import.meta.url));
const PREFIX = `sluice-http-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const LIMIT = 15;

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch (e) {
    if (process.env.CI)
      throw new Error(`Redis at ${REDIS_URL} is unreachable (CI is set)`, { cause: e });
    return false;
  } finally {
    probe.disconnect();
  }
}

function startServer(): { child: ChildProcess; urls: Promise<Record<string, string>> } {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", SERVER, REDIS_URL, PREFIX, String(LIMIT)],
    {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const urls = new Promise<Record<string, string>>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as Record<string, string>);
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { child, urls };
}

const reachable = await redisReachable();

describe.skipIf(!reachable)("two server processes sharing one Redis", () => {
  const servers: ReturnType<typeof startServer>[] = [];
  let urls: Record<string, string>[] = [];

  beforeAll(async () => {
    servers.push(startServer(), startServer());
    urls = await Promise.all(servers.map((s) => s.urls));
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.child.stdin!.end();
    const client = new Redis(REDIS_URL);
    const keys = await client.keys(`${PREFIX}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  it.each(FRAMEWORKS)("%s: admit exactly the limit between them", async (framework) => {
    const statuses = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await fetch(`${urls[i % 2]![framework]}/ok`);
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - LIMIT);
  });
});
