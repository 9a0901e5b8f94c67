// The Keap simulator in a process of its own, for the load scenarios: the server then takes its
// timestamps on its own event loop, apart from the load generators, as Keap's gateway would.
// argv[2]: JSON simulator options. Messages: "stats" -> stats, "close" -> closes and exits.
import { execFileSync } from "node:child_process";
import { setPriority } from "node:os";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";

// The simulator stands in for a gateway on machines of its own: on a machine shared with other
// work, a simulator that is not scheduled when a request arrives stamps it late, and two requests
// sent apart arrive "together". Real-time scheduling (SCHED_FIFO, every thread; where permitted)
// keeps its timestamps to the arrival; the kernel still leaves other work 5% of each second, and
// the simulator idles between requests. Otherwise: ahead of the load generators by niceness.
try {
  execFileSync("chrt", ["-a", "-f", "-p", "20", String(process.pid)], { stdio: "ignore" });
} catch {
  try {
    setPriority(-10);
  } catch {
    // Not permitted: run at normal priority.
  }
}
const sim = await startKeapSimulator(JSON.parse(process.argv[2] ?? "{}"));
process.send?.({ url: sim.url });
process.on("message", async (m) => {
  if (m === "stats") process.send?.({ stats: sim.stats() });
  if (m === "close") {
    await sim.close();
    process.disconnect?.();
  }
});
