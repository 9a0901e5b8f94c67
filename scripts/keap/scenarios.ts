// Runs Keap load scenarios: each simulator and each client in a process of its own (so the
// simulator sees requests when they arrive, not when a shared event loop gets to them).
import { type ChildProcess, execFile, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { KeapClientStats } from "@sluice/adapter-keap";
import type { KeapSimulatorOptions, KeapSimulatorStats } from "@sluice/adapter-keap/simulator";
import type { LoadSpec } from "./child.js";
import type { LoadResult } from "./load.js";

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL("./child.ts", import.meta.url));
const SIMULATOR = fileURLToPath(new URL("./sim-process.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Scenario {
  name: string;
  simulator: KeapSimulatorOptions;
  /** How far the simulator's clock runs ahead of the store's (ms; negative: behind). */
  simulatorClockSkewMs?: number;
  /** One entry per child process. */
  processes: Omit<LoadSpec, "url" | "startAt">[];
}

export interface ScenarioResult {
  name: string;
  processes: number;
  workers: number;
  durationMs: number;
  /** Summed over the processes; `keap` only for paced loads. */
  clients: Omit<LoadResult, "keap"> & { keap?: Omit<KeapClientStats, "spacingMs"> };
  server: KeapSimulatorStats;
}

interface SimulatorProcess {
  url: string;
  stats(): Promise<KeapSimulatorStats>;
  close(): Promise<void>;
}

/** Starts a simulator in a child process; resolves once it listens. */
function startSimulatorProcess(
  options: KeapSimulatorOptions,
  clockSkewMs = 0,
): Promise<SimulatorProcess> {
  const child: ChildProcess = fork(SIMULATOR, [JSON.stringify(options), String(clockSkewMs)], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T>(field: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (!(field in m)) return;
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(m[field] as T);
      };
      const onExit = (code: number | null) => reject(new Error(`simulator exited (${code})`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  return next<string>("url").then((url) => ({
    url,
    stats: () => {
      const answer = next<KeapSimulatorStats>("stats");
      child.send("stats");
      return answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.send("close");
      }),
  }));
}

/** Runs scenarios side by side; every child starts sending at the same moment. */
export async function runScenarios(
  scenarios: Scenario[],
  options: { startDelayMs?: number } = {},
): Promise<ScenarioResult[]> {
  const sims = await Promise.all(
    scenarios.map((s) => startSimulatorProcess(s.simulator, s.simulatorClockSkewMs)),
  );
  try {
    // Time for every child to load before any of them sends.
    const startAt = Date.now() + (options.startDelayMs ?? 8_000);
    const results = await Promise.all(
      scenarios.map(async (s, i) => {
        const outs = await Promise.all(
          s.processes.map(async (p) => {
            const spec: LoadSpec = { ...p, url: sims[i]!.url, startAt };
            const { stdout, stderr } = await run(
              process.execPath,
              ["--import", "tsx", CHILD, JSON.stringify(spec)],
              { cwd: ROOT, timeout: p.durationMs + 60_000, env: process.env },
            );
            if (process.env.KEAP_DEBUG) process.stderr.write(stderr);
            return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
          }),
        );
        const clients: ScenarioResult["clients"] = { ok: 0, throttled: 0, failed: 0 };
        for (const r of outs) {
          clients.ok += r.ok;
          clients.throttled += r.throttled;
          clients.failed += r.failed;
          if (r.keap !== undefined) clients.keap = addStats(clients.keap, r.keap);
        }
        return {
          name: s.name,
          processes: s.processes.length,
          workers: s.processes.reduce((a, p) => a + (p.mode === "naive" ? 1 : p.workers), 0),
          durationMs: s.processes[0]!.durationMs,
          clients,
          server: await sims[i]!.stats(),
        };
      }),
    );
    return results;
  } finally {
    await Promise.all(sims.map((s) => s.close()));
  }
}

function addStats(
  a: Omit<KeapClientStats, "spacingMs"> | undefined,
  b: KeapClientStats,
): Omit<KeapClientStats, "spacingMs"> {
  const byCause = { ...b.byCause };
  if (a !== undefined) {
    for (const cause of Object.keys(byCause) as (keyof typeof byCause)[]) {
      byCause[cause] += a.byCause[cause];
    }
  }
  return {
    sent: (a?.sent ?? 0) + b.sent,
    throttled: (a?.throttled ?? 0) + b.throttled,
    byCause,
    returned: (a?.returned ?? 0) + b.returned,
  };
}
