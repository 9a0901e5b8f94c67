// `npm start`: imports fake contacts into a local Keap simulator through keap.fetch on the
// memory store, with a progress bar and a closing summary. Options: --contacts N (default 300),
// --profile oauth|pat (default oauth), --workers N (default 8); --help prints usage.
import { parseArgs } from "node:util";
import { createKeapClient, keapProfiles } from "@sluice/adapter-keap";
import { startKeapSimulator } from "@sluice/adapter-keap/simulator";
import { createLimiter } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";

export interface DemoOptions {
  contacts: number;
  profile: "oauth" | "pat";
  workers: number;
  /** Where the progress and summary go (default process.stdout). */
  out?: { write(text: string): unknown; isTTY?: boolean };
}

export interface DemoSummary {
  imported: number;
  sent: number;
  /** 429s the simulator sent; each was retried by keap.fetch unless counted in `reachedCaller`. */
  throttled: number;
  /** 429s handed back to the import loop (retries or maxWaitMs ran out): 0 is the promise. */
  reachedCaller: number;
  failed: number;
  seconds: number;
  /**
   * Achieved requests per second, and the most per second the profile's policies admit over the
   * same time from a fresh start (a short PAT run is bound by the 5/s spike, not yet by the
   * 240/minute throttle; a long one tends to 4/s).
   */
  rate: number;
  limitRate: number;
  quotaLeft: number | undefined;
}

const PROFILES = ["oauth", "pat"] as const;

/** Requests per second a greedy client gets from the profile's own policies in `seconds`. */
async function limitRate(profile: DemoOptions["profile"], seconds: number): Promise<number> {
  const { policies } = keapProfiles[`keap:${profile}`];
  let now = Date.UTC(2026, 0, 1, 12);
  const end = now + seconds * 1000;
  const limiter = createLimiter({ store: memoryStore({ clock: () => now }), policies });
  const key = { app: "demo-app", tenant: "demo", token: "pat-demo" };
  let admitted = 0;
  while (now < end) {
    const d = await limiter.take(key);
    if (d.allowed) admitted++;
    else now += Math.max(1, d.retryAfterMs);
  }
  return admitted / seconds;
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const out = o.out ?? process.stdout;
  const sim = await startKeapSimulator({ profile: o.profile });
  const identity =
    o.profile === "oauth" ? { app: "demo-app" } : { tenant: "demo", token: "pat-demo" };
  const keap = createKeapClient({ profile: o.profile, store: memoryStore(), identity });
  let throttled = 0;
  keap.on("throttled", () => throttled++);
  const authorization = `Bearer ${identity.app ?? identity.token}`;

  const start = Date.now();
  let next = 0;
  let imported = 0;
  let failed = 0;
  let quotaLeft: number | undefined;
  const bar = progress(out, o.contacts);
  const timer = setInterval(() => bar(imported, start, quotaLeft, throttled), 250);

  await Promise.all(
    Array.from({ length: o.workers }, async () => {
      while (next < o.contacts) {
        const i = next++;
        const contact = {
          given_name: `Ada${i}`,
          family_name: "Lovelace",
          email_addresses: [{ email: `ada${i}@example.com`, field: "EMAIL1" }],
        };
        try {
          const res = await keap.fetch(`${sim.url}/crm/rest/v2/contacts`, {
            method: "POST",
            headers: { authorization, "content-type": "application/json" },
            body: JSON.stringify(contact),
          });
          const left = Number(res.headers.get("x-keap-product-quota-available"));
          if (res.headers.has("x-keap-product-quota-available")) quotaLeft = left;
          await res.arrayBuffer();
          if (res.ok) imported++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  clearInterval(timer);
  bar(imported, start, quotaLeft, throttled);
  out.write("\n");
  const seconds = (Date.now() - start) / 1000;
  const stats = sim.stats();
  const reachedCaller = keap.stats().returned;
  keap.close();
  await sim.close();
  const summary: DemoSummary = {
    imported,
    sent: stats.served + stats.throttled,
    throttled: stats.throttled,
    reachedCaller,
    failed,
    seconds,
    rate: imported / seconds,
    limitRate: await limitRate(o.profile, seconds),
    quotaLeft,
  };
  out.write(
    [
      "",
      `Imported ${summary.imported} of ${o.contacts} contacts in ${seconds.toFixed(1)} s (${o.profile} profile, ${o.workers} workers).`,
      `Requests sent: ${summary.sent}; 429s received: ${summary.throttled} (retried by keap.fetch; reached the import: ${reachedCaller}); failed: ${failed}.`,
      `Achieved ${summary.rate.toFixed(1)} requests/s against a limit of ${summary.limitRate.toFixed(1)}/s over those ${seconds.toFixed(1)} s (${((summary.rate / summary.limitRate) * 100).toFixed(0)}%).`,
      "",
    ].join("\n"),
  );
  return summary;
}

/** A one-line progress bar, redrawn in place on a terminal, every 5 s otherwise. */
function progress(out: NonNullable<DemoOptions["out"]>, total: number) {
  let lastPlain = 0;
  return (done: number, start: number, quotaLeft: number | undefined, throttled: number) => {
    const seconds = Math.max(0.001, (Date.now() - start) / 1000);
    const width = 30;
    const filled = Math.round((done / total) * width);
    const line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}  ${(done / seconds).toFixed(1)} req/s  quota left ${quotaLeft ?? "?"}  429s ${throttled}`;
    if (out.isTTY) out.write(`\r${line}`);
    else if (Date.now() - lastPlain >= 5_000 || done === total) {
      lastPlain = Date.now();
      out.write(`${line}\n`);
    }
  };
}

const USAGE = `Usage: npm start -- [--profile oauth|pat] [--contacts N] [--workers N]

Imports fake contacts into a local Keap simulator through keap.fetch on the memory store.
  --profile   Keap credential type whose limits apply: ${PROFILES.join(" or ")} (default oauth)
  --contacts  contacts to import (default 300)
  --workers   concurrent callers (default 8)
  --help      this text
`;

/** Parses the command line; an error message (and exit code 2) for anything it cannot use. */
export function parseDemoArgs(
  args: string[],
): { help: true } | { error: string } | Omit<DemoOptions, "out"> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        contacts: { type: "string", default: "300" },
        profile: { type: "string", default: "oauth" },
        workers: { type: "string", default: "8" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    return { error: (e as Error).message };
  }
  if (values.help) return { help: true };
  const profile = values.profile as string;
  if (!(PROFILES as readonly string[]).includes(profile)) {
    return { error: `unknown --profile "${profile}": use ${PROFILES.join(" or ")}` };
  }
  const contacts = Number(values.contacts);
  const workers = Number(values.workers);
  if (!Number.isInteger(contacts) || contacts < 1 || !Number.isInteger(workers) || workers < 1) {
    return { error: "--contacts and --workers take whole numbers above 0" };
  }
  return { profile: profile as DemoOptions["profile"], contacts, workers };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const parsed = parseDemoArgs(process.argv.slice(2));
  if ("help" in parsed) {
    console.log(USAGE);
    process.exit(0);
  }
  if ("error" in parsed) {
    console.error(`${parsed.error}\n\n${USAGE}`);
    process.exit(2);
  }
  console.log(
    `sluice demo: importing ${parsed.contacts} contacts into a local Keap simulator (${parsed.profile} limits) through keap.fetch\n`,
  );
  await runDemo(parsed);
}
