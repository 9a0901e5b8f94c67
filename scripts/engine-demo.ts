// `npm run demo:engine`: simulated traffic against a token bucket plus a daily quota
// on the memory store, with a simulated clock, printing what was admitted and refused over time.
import { createLimiter } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";

const START = Date.UTC(2026, 10, 22, 23, 59, 50); // ten seconds before midnight UTC
let now = START;
const limiter = createLimiter({
  store: memoryStore({ clock: () => now }),
  policies: [
    { kind: "tokenBucket", name: "burst", capacity: 5, refill: { tokens: 2, every: "1s" } },
    { kind: "fixedWindow", name: "daily", limit: 20, window: "1d" },
  ],
});

// A client that fires 6 requests per second for 25 simulated seconds: faster than the bucket
// refills, so it is paced down to 2 per second, and the daily quota runs out before midnight.
const perSecond = 6;
const seconds = 25;
let admitted = 0;
let refused = 0;
console.log("time (UTC)  admitted  refused  burst left  daily left  blocked by");
for (let s = 0; s < seconds; s++) {
  let a = 0;
  let r = 0;
  let last = await limiter.peek("customer-42");
  const blocked = new Set<string>();
  for (let i = 0; i < perSecond; i++) {
    now = START + s * 1000 + Math.floor((i * 1000) / perSecond);
    const d = await limiter.take("customer-42");
    last = d;
    if (d.allowed) a++;
    else {
      r++;
      for (const name of d.blockedBy) blocked.add(name);
    }
  }
  admitted += a;
  refused += r;
  const [burst, daily] = last.policies;
  const time = new Date(now).toISOString().slice(11, 19);
  console.log(
    `${time}    ${"#".repeat(a).padEnd(8)}  ${String(r).padStart(7)}  ${String(burst?.remaining).padStart(10)}  ${String(daily?.remaining).padStart(10)}  ${[...blocked].join(", ")}`,
  );
}
console.log(`\n${admitted} admitted, ${refused} refused in ${seconds} simulated seconds.`);
console.log("The bucket paces the burst to 2 per second; the daily quota resets at 00:00 UTC.");
