// Servers the chaos run starts on loopback ports it picks, and stops afterwards: a redis-server,
// a Redis Cluster of 3 masters and 3 replicas, and a PostgreSQL cluster made with initdb.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Redis } from "ioredis";

const run = promisify(execFile);

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

async function waitForRedis(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = new Redis(port, "127.0.0.1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on("error", () => {});
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return;
    } catch {
      c.disconnect();
      if (Date.now() > end) throw new Error(`redis on ${port} did not start`);
      await sleep(50);
    }
  }
}

/** One redis-server process (optionally a cluster node). */
export class RedisProcess {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), "sluice-chaos-redis-"));
  constructor(
    readonly port: number,
    private readonly cluster = false,
  ) {}

  async start(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", ""];
    args.push("--appendonly", "no");
    if (this.cluster) {
      args.push("--cluster-enabled", "yes", "--cluster-node-timeout", "2000");
      args.push("--cluster-config-file", join(this.dir, "nodes.conf"));
    }
    this.child = spawn("redis-server", args, { cwd: this.dir, stdio: "ignore" });
    await waitForRedis(this.port);
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  kill(): void {
    this.child?.kill("SIGCONT");
    this.child?.kill("SIGKILL");
    this.child = undefined;
  }

  stop(): void {
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** 3 masters + 3 replicas on loopback. */
export class RedisClusterProcesses {
  readonly nodes: RedisProcess[] = [];

  static async start(): Promise<RedisClusterProcesses> {
    const c = new RedisClusterProcesses();
    for (let i = 0; i < 6; i++) c.nodes.push(new RedisProcess(await freePort(), true));
    await Promise.all(c.nodes.map((n) => n.start()));
    await run("redis-cli", [
      "--cluster",
      "create",
      ...c.nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
    await c.waitOk();
    // Replicas attach a moment after the slots are assigned.
    for (let i = 0; i < 100; i++) {
      if ((await c.topology()).filter((n) => !n.master && n.of !== "-").length === 3) break;
      await sleep(100);
    }
    return c;
  }

  get seeds(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: "127.0.0.1", port: n.port }));
  }

  async info(port: number, section: string): Promise<string> {
    const { stdout } = await run("redis-cli", ["-p", String(port), ...section.split(" ")]);
    return stdout;
  }

  async waitOk(timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const ok = await Promise.all(
        this.nodes.map(async (n) =>
          (await this.info(n.port, "cluster info")).includes("cluster_state:ok"),
        ),
      );
      if (ok.every(Boolean)) return;
      if (Date.now() > end) throw new Error("the cluster did not reach cluster_state:ok");
      await sleep(200);
    }
  }

  /** Node id, port, role and master id of every node. */
  async topology(): Promise<{ id: string; port: number; master: boolean; of: string }[]> {
    const text = await this.info(this.nodes[0]!.port, "cluster nodes");
    return text
      .trim()
      .split("\n")
      .map((line) => {
        const f = line.split(" ");
        return {
          id: f[0]!,
          port: Number(f[1]!.split(":")[1]!.split("@")[0]),
          master: f[2]!.includes("master"),
          of: f[3]!,
        };
      });
  }

  /** A manual failover: a replica of the first master takes over. */
  async failover(): Promise<void> {
    const topo = await this.topology();
    const master = topo.find((n) => n.master)!;
    const replica = topo.find((n) => !n.master && n.of === master.id)!;
    await run("redis-cli", ["-p", String(replica.port), "cluster", "failover"]);
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      const t = await this.topology();
      if (t.find((n) => n.id === replica.id)?.master) break;
      await sleep(100);
    }
    await this.waitOk();
  }

  /** Moves `slots` slots from one master to another while clients keep deciding. */
  async reshard(slots: number): Promise<void> {
    const masters = (await this.topology()).filter((n) => n.master);
    await run(
      "redis-cli",
      [
        "--cluster",
        "reshard",
        `127.0.0.1:${masters[0]!.port}`,
        "--cluster-from",
        masters[0]!.id,
        "--cluster-to",
        masters[1]!.id,
        "--cluster-slots",
        String(slots),
        "--cluster-yes",
        "--cluster-pipeline",
        "50",
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await this.waitOk();
  }

  stop(): void {
    for (const n of this.nodes) n.stop();
  }
}

function pgBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0]!, "bin");
}

const AS_ROOT = process.getuid?.() === 0;

/** A PostgreSQL server made with initdb in a temporary directory (as `postgres` when root). */
export class PostgresProcess {
  readonly dir = mkdtempSync(join(tmpdir(), "sluice-chaos-pg-"));
  private readonly bin = pgBin();
  constructor(readonly port: number) {}

  private cmd(command: string, args: string[]): [string, string[]] {
    const file = join(this.bin, command);
    return AS_ROOT ? ["runuser", ["-u", "postgres", "--", file, ...args]] : [file, args];
  }

  init(): void {
    if (AS_ROOT) chownSync(this.dir, Number(execFileSync("id", ["-u", "postgres"])), 0);
    const [f, a] = this.cmd("initdb", [
      "-D",
      this.data,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
    ]);
    execFileSync(f, a, { stdio: "pipe" });
  }

  get data(): string {
    return join(this.dir, "data");
  }

  get connection() {
    return { host: "127.0.0.1", port: this.port, user: "postgres", database: "postgres" };
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    const [f, a] = this.cmd("pg_ctl", [
      "-D",
      this.data,
      "-o",
      options,
      "-l",
      join(this.dir, "log"),
      "-w",
      "start",
    ]);
    await run(f, a);
  }

  /** The postmaster's pid (first line of postmaster.pid). */
  pid(): number {
    const text = execFileSync("cat", [join(this.data, "postmaster.pid")]).toString();
    return Number(text.split("\n")[0]);
  }

  /** SIGSTOP/SIGCONT to the postmaster and every backend. */
  signalAll(sig: "SIGSTOP" | "SIGCONT"): void {
    const parent = this.pid();
    const kids = execFileSync("pgrep", ["-P", String(parent)])
      .toString()
      .trim()
      .split("\n");
    for (const p of [parent, ...kids.map(Number)]) {
      try {
        process.kill(p, sig);
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /** A crash: every server process killed with SIGKILL. */
  kill9(): void {
    const parent = this.pid();
    let kids: number[] = [];
    try {
      kids = execFileSync("pgrep", ["-P", String(parent)])
        .toString()
        .trim()
        .split("\n")
        .map(Number);
    } catch {
      // No backends.
    }
    for (const p of [parent, ...kids]) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    rmSync(join(this.data, "postmaster.pid"), { force: true });
  }

  stop(): void {
    try {
      const [f, a] = this.cmd("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "stop"]);
      execFileSync(f, a, { stdio: "pipe" });
    } catch {
      // Not running.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
