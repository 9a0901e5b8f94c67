import { memoryStore } from "@sluice/store-memory";
import {
  createKeapClient,
  type KeapClient,
  type KeapClientEvents,
  type KeapClientOptions,
} from "../src/index.js";

// Shared by the client tests: scripted answers instead of a server, for the 429 paths.

export const PAT = { tenant: "ab103", token: "pat-1" };

export const SPIKE_FAULT = JSON.stringify({
  fault: {
    faultstring:
      "Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=2, periodInMicroseconds=5000000, maxBurstMessageCount=1.0}",
    detail: { errorcode: "policies.ratelimit.SpikeArrestViolation" },
  },
});
export const BARE = JSON.stringify({
  code: "429",
  message: "Quota Exceeded",
  status: "Request Throttled",
  details: null,
});

/** A fetch that answers from a list (the last answer repeats) and records every call. */
export function scripted(answers: (() => Response)[]) {
  const calls: { at: number; url: string }[] = [];
  const fn = (async (input: string | URL | Request) => {
    calls.push({ at: Date.now(), url: String(input instanceof Request ? input.url : input) });
    return answers[Math.min(calls.length - 1, answers.length - 1)]!();
  }) as typeof fetch;
  return { fetch: fn, calls };
}
export const ok =
  (headers: Record<string, string> = {}) =>
  () =>
    new Response("{}", { status: 200, headers });
export const throttled =
  (body: string, headers: Record<string, string> = {}) =>
  () =>
    new Response(body, { status: 429, headers });

const DAY_MS = 86_400_000;
const startedAtMs = Date.now();
/** Noon UTC of the day the run started: the daily quota's window ends half a day later. */
const NOON_MS = Math.floor(startedAtMs / DAY_MS) * DAY_MS + DAY_MS / 2;

/**
 * A clock for stores and simulators that runs at real speed from noon UTC, so a test never sees
 * the daily quota roll over, whatever the time of day it runs at. Only for tests whose answers
 * carry no absolute times: the client reads those on its own clock.
 */
export const fromNoon = (): number => NOON_MS + (Date.now() - startedAtMs);

/** The end of the daily quota's window on `fromNoon`. */
export const NEXT_MIDNIGHT_MS = NOON_MS + DAY_MS / 2;

/** A PAT client on a fresh memory store. */
export function patClient(fetch: typeof globalThis.fetch, extra: Partial<KeapClientOptions> = {}) {
  return createKeapClient({ profile: "pat", store: memoryStore(), identity: PAT, fetch, ...extra });
}

export function events<E extends keyof KeapClientEvents>(
  client: KeapClient,
  name: E,
): KeapClientEvents[E][] {
  const seen: KeapClientEvents[E][] = [];
  client.on(name, (e) => seen.push(e));
  return seen;
}
