import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort, OwnRedis, realClockEnv, sleep } from "./helpers.js";

const run = promisify(execFile);

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-p", String(port), ...args], {
    timeout: 10_000,
    env: realClockEnv(),
  });
  return stdout;
}

export interface OwnCluster {
  /** The masters' ports (the OS picked them). */
  readonly ports: readonly number[];
  /** Kills the nodes this cluster started, and only those. */
  stop(): void;
}

/**
 * A real 3-master Redis Cluster of the test's own: redis-server processes it spawned on loopback
 * ports the OS picks (data and cluster bus), each in a temporary directory. Two runs on one
 * machine get two clusters; nothing else listening anywhere is touched.
 */
export async function startCluster(): Promise<OwnCluster> {
  const nodes: OwnRedis[] = [];
  const stop = () => {
    for (const node of nodes) node.stop();
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await OwnRedis.launch(async () => [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          // The bus port is given explicitly: port + 10000 may be taken or past 65535.
          "--cluster-port",
          String(await freePort()),
        ]),
      );
    }
    const ports = nodes.map((n) => n.port);
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      { timeout: 20_000, env: realClockEnv() },
    );
    for (let i = 0; ; i++) {
      const states = await Promise.all(ports.map((p) => cli(p, "cluster", "info")));
      if (states.every((s) => s.includes("cluster_state:ok"))) break;
      if (i > 200) throw new Error("cluster did not reach cluster_state:ok");
      await sleep(50);
    }
    return { ports, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
