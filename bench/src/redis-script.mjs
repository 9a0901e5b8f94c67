// Redis time per decision of the store's script, read from Redis itself (INFO commandstats), so
// the client's share and the network are left out. For each case it captures one batch of 32
// takes as the store sends it, then replays that batch: rounds of CALLS script calls, each round
// starting from the same stored state, scripts alternated round by round.
//
//   node src/redis-script.mjs [other.lua ...]
//
// Scripts: the one the built store sends for the case (its common take written out for the
// case's kinds), the built script every layout can use (DECIDE_LUA: its common take is a loop
// over the kinds' takes), then any .lua given (an edited or earlier script, to compare: the
// arguments are the same for every version since the entry format last changed).
// CASES=2,3 runs only those cases (numbered from 1). With .lua files given, each later one also
// gets the median of its per-round ratio to the first.
// STAT=cpu reads Redis' main-thread CPU time (INFO cpu) instead of the wall time inside EVALSHA
// (INFO commandstats): on a crowded machine the wall time includes time the scheduler took from
// Redis, the CPU time does not. Use it with a Redis of your own (REDIS_URL): it counts every
// client's commands.
// Cases: 1 policy; 3 policies (token bucket, fixed window, sliding window of 1 slot); the same
// 3 with the sliding window holding 60 slots (a window under steady traffic).
import { readFileSync } from "node:fs";
import { createLimiter } from "@sluice/core";
import { DECIDE_LUA, decideScript, redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const CPU = process.env.STAT === "cpu";
const CALLS = Number(process.env.CALLS ?? 300);
const BATCH = Number(process.env.BATCH ?? 32);
const prefix = `bench-script-${process.pid}`;
const extra = process.argv.slice(2).map((f) => ({ name: f, text: readFileSync(f, "utf8") }));

const three = (precision) => [
  { kind: "tokenBucket", name: "burst", capacity: 1e9, refill: { tokens: 1000, every: "1s" } },
  { kind: "fixedWindow", name: "minute", limit: 1e9, window: "1m" },
  { kind: "slidingWindow", name: "day", limit: 1e9, window: "1d", precision },
];
const cases = [
  { name: "1 policy", policies: three("1m").slice(0, 1), slots: 0 },
  { name: "3 policies", policies: three("1m"), slots: 0 },
  // 20 ms slots so that 60 fill in a second; a replay round adds a few more.
  { name: "3 policies, 60 slots", policies: three("20ms"), slots: 60 },
];

const client = new Redis(url);
const ids = Array.from({ length: BATCH }, (_, i) => `user-${i}`);

/** The arguments of one script call carrying BATCH takes, after `slots` rounds of takes. */
async function capture(c, tag) {
  const limiter = createLimiter({
    store: redisStore({ client }),
    prefix: `${prefix}-${tag}`,
    policies: c.policies,
  });
  await Promise.all(ids.map((id) => limiter.take(id)));
  for (let s = 1; s < c.slots; s++) {
    await new Promise((r) => setTimeout(r, 22));
    await Promise.all(ids.map((id) => limiter.take(id)));
  }
  let args;
  let sha;
  const original = client.evalshaBuffer;
  client.evalshaBuffer = (...a) => {
    if (args === undefined && Number(a[1]) === BATCH) {
      sha = String(a[0]);
      args = a.slice(1).map(String);
      // No deadline: a replay runs long after the capture (and would be answered as late).
      args[Number(args[0]) + 4] = "0";
    }
    return original.apply(client, a);
  };
  await Promise.all(ids.map((id) => limiter.take(id)));
  client.evalshaBuffer = original;
  if (args === undefined) throw new Error(`no batch of ${BATCH} captured for ${c.name}`);
  return { args, text: decideScript(sha) };
}

/** Redis' main-thread CPU time so far, µs. */
async function mainThreadCpuUsec() {
  const info = await client.info("cpu");
  const user = /used_cpu_user_main_thread:([\d.]+)/.exec(info);
  const sys = /used_cpu_sys_main_thread:([\d.]+)/.exec(info);
  return (Number(user[1]) + Number(sys[1])) * 1e6;
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

console.log(
  `${ROUNDS} rounds of ${CALLS} calls of ${BATCH} takes; Redis µs ${CPU ? "of CPU" : "in EVALSHA"} per decision, median (range)`,
);
try {
  const only = (process.env.CASES ?? "").split(",").filter(Boolean).map(Number);
  for (const [n, c] of cases.entries()) {
    if (only.length > 0 && !only.includes(n + 1)) continue;
    const { args, text } = await capture(c, n);
    const scripts = [{ name: "store's", text }];
    if (text !== DECIDE_LUA) scripts.push({ name: "any-layout script", text: DECIDE_LUA });
    scripts.push(...extra);
    const shas = [];
    for (const s of scripts) shas.push(await client.script("LOAD", s.text));
    const keys = args.slice(1, 1 + Number(args[0]));
    const saved = [];
    for (const k of keys) saved.push([k, await client.getBuffer(k), await client.pttl(k)]);
    const restore = () =>
      Promise.all(
        saved.map(([k, v, ttl]) =>
          v ? client.set(k, v, "PX", ttl > 0 ? ttl : 3_600_000) : client.del(k),
        ),
      );
    const times = shas.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, sha] of shas.entries()) {
        await restore();
        await client.config("RESETSTAT");
        const cpuBefore = CPU ? await mainThreadCpuUsec() : 0;
        const calls = [];
        for (let k = 0; k < CALLS; k++) calls.push(client.evalshaBuffer(sha, ...args));
        const replies = await Promise.all(calls);
        if (replies.some((reply) => reply.length !== 1))
          throw new Error(`${scripts[i].name}: a decision failed`);
        const stats = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(
          await client.info("commandstats"),
        );
        if (CPU) stats[2] = (await mainThreadCpuUsec()) - cpuBefore;
        times[i].push(Number(stats[2]) / Number(stats[1]) / BATCH);
      }
    }
    for (const [i, s] of scripts.entries()) {
      const t = times[i];
      // The median of this script's per-round ratio to the first script given: rounds alternate
      // the scripts, so a ratio compares runs a few ms apart, through the machine's swings.
      const base = extra.length > 0 ? scripts.length - extra.length : -1;
      const ratio =
        base >= 0 && i > base
          ? `  x${median(t.map((v, r) => v / times[base][r])).toFixed(3)} of ${scripts[base].name}`
          : "";
      console.log(
        `${c.name.padEnd(22)} ${s.name.padEnd(28)} ${median(t).toFixed(2)} (${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)})${ratio}`,
      );
    }
  }
} finally {
  let cursor = "0";
  do {
    const [next, found] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (found.length > 0) await client.unlink(...found);
  } while (cursor !== "0");
  client.disconnect();
}
