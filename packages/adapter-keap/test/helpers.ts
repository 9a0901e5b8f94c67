import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { memoryStore } from "@sluice/store-memory";
import { vi } from "vitest";
import {
  createKeapClient,
  type KeapClient,
  type KeapClientEvents,
  type KeapClientOptions,
} from "../src/index.js";

// Shared by the client tests: scripted answers instead of a server, for the 429 paths, and a
// loopback server where the timing of real requests matters.

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

/**
 * Runs `body` with `Date.now` from noon UTC, running on at real speed: the client, the memory
 * store and the simulator all read it, so a test never sees the daily quota roll over, whatever
 * the time of day it runs at. `body` gets the end of that day (the quota's reset).
 */
export async function atNoon<T>(body: (midnightMs: number) => Promise<T>): Promise<T> {
  const noonMs = Math.floor(Date.now() / DAY_MS) * DAY_MS + DAY_MS / 2;
  vi.useFakeTimers({ toFake: ["Date"], now: noonMs, shouldAdvanceTime: true, advanceTimeDelta: 5 });
  try {
    return await body(noonMs + DAY_MS / 2);
  } finally {
    vi.useRealTimers();
  }
}

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

/** Blocks the event loop for `ms` (a busy process, a garbage collection). */
export function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spinning.
  }
}

/** A loopback HTTP server answering `{}` to every request, on a port it picks. */
export async function localServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => res.end("{}"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Spies on the spike holds a client places (`holdSpike(atMs)`, epoch ms). */
export function spyHolds(keap: KeapClient) {
  return vi.spyOn(keap as unknown as { holdSpike(atMs: number): Promise<void> }, "holdSpike");
}
