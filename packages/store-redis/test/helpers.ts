import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CompiledPolicy,
  evaluate,
  type PolicyStateRecord,
  type Store,
  type StoreObservation,
  type StoreOp,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core/store";
import { Redis } from "ioredis";
import { splitStateKey } from "../src/scope-key.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Whether the shared Redis answers. With CI set an unreachable server fails the run (tests
 * call `requireRedis()`); locally the suites that need it are skipped.
 */
export async function redisReachable(): Promise<boolean> {
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

/** Deletes every key under `prefix` (a test's own keys). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** A prefix no other test run uses, so tests can share one Redis. */
export function uniquePrefix(tag: string): string {
  return `t-${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:`;
}

export interface RequestInit {
  cost?: number;
  acquire?: boolean;
  leaseId?: string;
  leaseTtlMs?: number;
  observations?: (StoreObservation | undefined)[];
  windowBounds?: (readonly number[] | undefined)[];
  learnedLimitTtlMs?: number;
}

/** A StoreRequest as the engine builds it, for keys `sluice:{<partition>}:<policy>:id=<id>`. */
export function request(
  policies: readonly CompiledPolicy[],
  keys: readonly string[],
  op: StoreOp,
  init: RequestInit = {},
): StoreRequest {
  return {
    op,
    policies,
    keys,
    partition: "p",
    cost: init.cost ?? (op === "take" || op === "refund" ? 1 : 0),
    acquire: init.acquire ?? false,
    leaseId: init.leaseId,
    leaseTtlMs: init.leaseTtlMs,
    observations: init.observations,
    learnedLimitTtlMs: init.learnedLimitTtlMs ?? 86_400_000,
    windowBounds: init.windowBounds,
  };
}

export function keysFor(policies: readonly CompiledPolicy[], partition: string, id = partition) {
  return Object.freeze(policies.map((p) => `sluice:{${partition}}:${p.name}:id=${id}`));
}

/**
 * Reference model in server-clock mode: runs `evaluate()` at the clock the store reported and
 * keeps the states it would write.
 */
export class Model {
  private readonly states = new Map<string, PolicyStateRecord>();

  check(req: StoreRequest, actual: StoreResult): number[] {
    const stored = req.keys.map((k) => this.states.get(k));
    const { result, write, states } = evaluate(req, stored, actual[1]!);
    if (write) {
      req.keys.forEach((k, i) => {
        const s = states[i];
        if (s === undefined) this.states.delete(k);
        else this.states.set(k, s);
      });
    }
    return result;
  }
}

export async function execute(store: Store, req: StoreRequest): Promise<number[]> {
  return [...(await store.execute(req))];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free loopback port (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of our own (for tests that kill it, pause it, flush it or make it a cluster
 * node), on a loopback port. Tests only ever stop the process they spawned: a server found on
 * the port is never ours unless it reports our child's pid.
 */
export class OwnRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly dir = mkdtempSync(join(tmpdir(), "sluice-redis-"));
  constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /** Starts one on a port the OS picks, trying other ports when one is taken meanwhile. */
  static async launch(
    extraArgs: () => readonly string[] | Promise<readonly string[]> = () => [],
  ): Promise<OwnRedis> {
    for (let attempt = 1; ; attempt++) {
      const server = new OwnRedis(await freePort(), await extraArgs());
      try {
        await server.start();
        return server;
      } catch (e) {
        server.stop();
        if (attempt >= 5) throw e;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // A killed server may still hold the port for a moment.
    await this.exited;
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        ...this.extraArgs,
      ],
      { cwd: this.dir, stdio: "ignore", env: realClockEnv() },
    );
    this.child = child;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    await waitForOwnServer(child, this.port, 5_000);
  }

  /** SIGSTOP / SIGCONT pause and resume it. */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  kill(): void {
    this.child?.kill("SIGKILL");
    this.child = undefined;
  }

  stop(): void {
    this.signal("SIGCONT");
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The environment without libfaketime (scripts/test-at-time.sh): redis-server and redis-cli, built
 * with jemalloc, hang under it, so servers of the tests' own keep the real clock as the shared
 * Redis does.
 */
export function realClockEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  for (const name of Object.keys(env)) if (name.startsWith("FAKETIME")) delete env[name];
  return env;
}

/** A client that tries `port` once, without retries or unhandled errors (for polling a server). */
function probeClient(port: number): Redis {
  const c = new Redis(port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on("error", () => {});
  return c;
}

/** Waits until `child` answers on `port` (INFO reports its pid); throws when it exits first. */
async function waitForOwnServer(child: ChildProcess, port: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `redis-server on port ${port} exited (${child.exitCode ?? child.signalCode})`,
      );
    }
    const c = probeClient(port);
    try {
      await c.connect();
      const info = await c.info("server");
      if (new RegExp(`^process_id:${child.pid}\\s*$`, "m").test(info)) return;
    } catch {
      // Not listening yet.
    } finally {
      c.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
    await sleep(50);
  }
}

export async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = probeClient(port);
    try {
      await c.connect();
      await c.ping();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    } finally {
      c.disconnect();
    }
  }
}

/** The scope key holding the state at `key` (see src/scope-key.ts), with the store's prefix. */
export function scopeKeyOf(prefix: string, key: string): string {
  return splitStateKey(prefix + key)[0];
}

export interface ScopeEntry {
  kind: number;
  /** When the entry stops counting (epoch ms). */
  due: number;
  /** The kind's numbers (slidingWindow: ll, lu, then slot and count pairs). */
  values: number[];
  /** slidingWindow: the total its entry ends with (undefined for an entry without one). */
  total?: number;
}

/** Decodes a scope key's entries (the layout documented in decide.lua), by policy name. */
export async function readScope(client: Redis, key: string): Promise<Map<string, ScopeEntry>> {
  const v = await client.getBuffer(key);
  const entries = new Map<string, ScopeEntry>();
  if (v === null) return entries;
  let p = 0;
  while (p < v.length) {
    const nameLength = v.readUInt32LE(p);
    const name = v.toString("utf8", p + 4, p + 4 + nameLength);
    p += 4 + nameLength;
    const kind = v.readUInt8(p);
    const due = v.readDoubleLE(p + 1);
    const payload = v.readUInt32LE(p + 9);
    p += 13;
    const values: number[] = [];
    let total: number | undefined;
    if (kind === 4) {
      values.push(v.readDoubleLE(p), v.readDoubleLE(p + 8));
      const slots = v.readUInt32LE(p + 16);
      for (let s = 0; s < 2 * slots; s++) values.push(v.readDoubleLE(p + 20 + 8 * s));
      if (payload === 28 + 16 * slots) total = v.readDoubleLE(p + 20 + 16 * slots);
    } else {
      for (let at = 0; at < payload; at += 8) values.push(v.readDoubleLE(p + at));
    }
    entries.set(name, total === undefined ? { kind, due, values } : { kind, due, values, total });
    p += payload;
  }
  return entries;
}
