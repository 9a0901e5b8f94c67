import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sleep } from "./helpers.js";

const run = promisify(execFile);
export const CLUSTER_PORTS = [7001, 7002, 7003] as const;

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-p", String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** Stops whatever a previous (crashed) run left on our ports; quiet when nothing listens. */
async function shutdownPorts(): Promise<void> {
  await Promise.all(
    CLUSTER_PORTS.map((port) => cli(port, "shutdown", "nosave").catch(() => undefined)),
  );
}

/**
 * A real 3-master Redis Cluster on loopback ports 7001-7003, in a temporary directory.
 * `stop()` shuts every node down and removes the directory (call it in afterAll).
 */
export async function startCluster(): Promise<{ stop: () => Promise<void> }> {
  await shutdownPorts();
  const dir = mkdtempSync(join(tmpdir(), "sluice-cluster-"));
  const stop = async () => {
    await shutdownPorts();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of CLUSTER_PORTS) {
      await run("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "yes",
        "--dir",
        dir,
      ]);
    }
    for (const port of CLUSTER_PORTS) {
      for (let i = 0; ; i++) {
        try {
          if ((await cli(port, "ping")).trim() === "PONG") break;
        } catch {}
        if (i > 100) throw new Error(`cluster node ${port} did not start`);
        await sleep(50);
      }
    }
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      { timeout: 20_000 },
    );
    for (let i = 0; ; i++) {
      const states = await Promise.all(CLUSTER_PORTS.map((p) => cli(p, "cluster", "info")));
      if (states.every((s) => s.includes("cluster_state:ok"))) break;
      if (i > 200) throw new Error("cluster did not reach cluster_state:ok");
      await sleep(50);
    }
    return { stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
