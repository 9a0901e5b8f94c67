// The Keap simulator in a process of its own, for the load scenarios: the server then takes its
// timestamps on its own event loop, apart from the load generators, as Keap's gateway would.
// argv[2]: JSON simulator options, argv[3]: clock skew (ms, optional). Messages: "stats" -> stats, "close" -> closes and exits.
import { setPriority } from "node:os";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";
import { realTimeMainThread } from "./real-time.js";

// The simulator stands in for a gateway on machines of its own: on a machine shared with other
// work, a simulator that is not scheduled when a request arrives stamps it late, and two requests
// sent apart arrive "together". With KEAP_BENCH_RT=1 its main thread gets real-time scheduling
// ahead of the clients' (see child.ts); otherwise nice -10, ahead of the clients' -5.
if (!(process.env.KEAP_BENCH_RT === "1" && realTimeMainThread(20))) {
  try {
    setPriority(-10);
  } catch {
    // Not permitted: run at normal priority.
  }
}
// argv[3]: ms this host's clock runs ahead of the store's (a Redis host whose clock is off).
const skewMs = Number(process.argv[3] ?? 0);
if (skewMs !== 0) {
  const hostNow = Date.now;
  Date.now = () => hostNow() + skewMs;
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
