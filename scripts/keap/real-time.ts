// Real-time scheduling for the Keap bench's processes, where permitted (root, or CAP_SYS_NICE).
import { execFileSync } from "node:child_process";

/**
 * SCHED_FIFO at `priority` for the main thread of `pid` (default this process) only: its helper
 * threads keep the normal scheduler, so that a main thread spinning while it waits for one of them
 * cannot starve it. The kernel still leaves other work 5% of each second. False when not permitted.
 */
export function realTimeMainThread(priority: number, pid = process.pid): boolean {
  try {
    execFileSync("chrt", ["-f", "-p", String(priority), String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
