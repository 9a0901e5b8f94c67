import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/** The newest PostgreSQL server binaries on this machine (`PG_BIN` overrides), if any. */
function findBinDir(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

const BIN = findBinDir();
const AS_ROOT = process.getuid?.() === 0;

/** Whether this machine can run a PostgreSQL server of the test's own (binaries; as root, runuser). */
export const canRunOwnPostgres =
  BIN !== undefined && (!AS_ROOT || existsSync("/usr/sbin/runuser") || existsSync("/sbin/runuser"));

/**
 * The environment without libfaketime (scripts/test-at-time.sh): PostgreSQL's statement_timeout
 * never fires under it, so a server of the test's own keeps the real clock as the shared one does.
 */
function realClockEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  for (const name of Object.keys(env)) if (name.startsWith("FAKETIME")) delete env[name];
  return env;
}

/** A free loopback port (the OS picks it). */
export function freePort(): Promise<number> {
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
 * A PostgreSQL server of one test file's own, in a temporary directory on `port`, so the test can
 * stop, crash and restart it without touching the shared server. PostgreSQL refuses to run as
 * root: as root, its commands run as the `postgres` user.
 */
export class OwnPostgres {
  readonly dir: string;

  constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), "sluice-pg-"));
  }

  get connection() {
    return { host: "127.0.0.1", port: this.port, user: "postgres", database: "postgres" };
  }

  private command(command: string, args: string[]): [string, string[]] {
    const file = join(BIN!, command);
    return AS_ROOT ? ["runuser", ["-u", "postgres", "--", file, ...args]] : [file, args];
  }

  private run(command: string, args: string[]): void {
    const [file, argv] = this.command(command, args);
    execFileSync(file, argv, { stdio: "pipe", env: realClockEnv() });
  }

  /** initdb (trust auth, no fsync: the data only has to outlive the server process). */
  init(): void {
    if (AS_ROOT) chownSync(this.dir, Number(execFileSync("id", ["-u", "postgres"])), 0);
    this.run("initdb", [
      "-D",
      join(this.dir, "data"),
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
    ]);
  }

  start(): void {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    this.run("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-o",
      options,
      "-l",
      join(this.dir, "log"),
      "-w",
      "start",
    ]);
  }

  /**
   * `fast`: clients get `57P01` and are disconnected; `immediate`: the server dies (a crash).
   * Resolves once it is down; the event loop keeps running meanwhile.
   */
  async stop(mode: "fast" | "immediate"): Promise<void> {
    const [file, argv] = this.command("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-m",
      mode,
      "-w",
      "stop",
    ]);
    await promisify(execFile)(file, argv, { env: realClockEnv() });
  }

  destroy(): void {
    try {
      this.run("pg_ctl", ["-D", join(this.dir, "data"), "-m", "immediate", "-w", "stop"]);
    } catch {
      // Not running.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
