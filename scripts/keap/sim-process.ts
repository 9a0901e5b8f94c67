// The Keap simulator in a process of its own, for the load scenarios: the server then takes its
// timestamps on its own event loop, apart from the load generators, as Keap's gateway would.
// argv[2]: JSON simulator options. Messages: "stats" -> stats, "close" -> closes and exits.
import { setPriority } from "node:os";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";

try {
  // Ahead of the load generators on a machine with few cores (allowed when run as root).
  setPriority(-10);
} catch {
  // Not permitted: run at normal priority.
}
const sim = await startKeapSimulator(JSON.parse(process.argv[2] ?? "{}"));
process.send?.({ url: sim.url });
// A parent that died (a test run stopped, a timeout) leaves no simulator behind.
process.on("disconnect", () => process.exit(0));
process.on("message", async (m) => {
  if (m === "stats") process.send?.({ stats: sim.stats() });
  if (m === "close") {
    await sim.close();
    process.disconnect?.();
  }
});
