// Load generators for the Keap bench, the demo and their tests: workers sending through
// keap.fetch, and the naive client of the forum threads (sleep between calls, no limiter).
import { setMaxListeners } from "node:events";
import {
  createKeapClient,
  type KeapClientProfile,
  type KeapClientStats,
  type KeapIdentity,
} from "@sluice/adapter-keap";
import type { Store } from "@sluice/core";

export interface LoadResult {
  /** Responses by status class. */
  ok: number;
  /** 429s that reached a caller (keap.fetch gave up on them, or the naive client got them). */
  throttled: number;
  /** Calls that rejected (QUOTA_EXHAUSTED, WAIT_TIMEOUT, network). */
  failed: number;
  /** What keap.fetch did (paced loads): requests sent, 429s received and retried, pacing. */
  keap?: KeapClientStats;
}

export interface PacedLoad {
  url: string;
  profile: KeapClientProfile;
  store: Store;
  identity: KeapIdentity;
  workers: number;
  durationMs: number;
  /** Client options passed through. */
  spikeMargin?: number;
  strict?: boolean;
  prefix?: string;
}

/**
 * `workers` loops calling keap.fetch (default retries) until `durationMs` has passed; a call
 * still waiting for capacity at the end is aborted and not counted. `throttled` counts 429s the
 * caller saw (retries used up); the simulator's stats count every 429 it sent.
 */
export async function pacedLoad(o: PacedLoad): Promise<LoadResult> {
  // KEAP_DEBUG=2: every request on stderr (epoch ms sent, round trip, status), to line up the
  // processes of a scenario.
  const traced: typeof fetch = async (input, init) => {
    const sentAtMs = Date.now();
    const res = await fetch(input, init);
    process.stderr.write(`req ${process.pid} ${sentAtMs} ${Date.now() - sentAtMs} ${res.status}\n`);
    return res;
  };
  const keap = createKeapClient({
    profile: o.profile,
    store: o.store,
    identity: o.identity,
    ...(process.env.KEAP_DEBUG === "2" ? { fetch: traced } : {}),
    maxWaitMs: o.durationMs + 60_000,
    ...(o.spikeMargin === undefined ? {} : { spikeMargin: o.spikeMargin }),
    ...(o.strict === undefined ? {} : { strict: o.strict }),
    ...(o.prefix === undefined ? {} : { prefix: o.prefix }),
  });
  const result: LoadResult = { ok: 0, throttled: 0, failed: 0 };
  if (process.env.KEAP_DEBUG) {
    keap.on("pacing", (e) =>
      process.stderr.write(
        `pacing ${process.pid} ${Date.now()} ${e.reason} ${e.spacingMs} catchUp=${String((keap as unknown as { catchUp: boolean }).catchUp)}\n`,
      ),
    );
    keap.on("throttled", (e) =>
      process.stderr.write(
        `throttled ${process.pid} ${Date.now()} ${e.cause} attempt=${e.attempt}\n`,
      ),
    );
  }
  const stop = AbortSignal.timeout(o.durationMs);
  setMaxListeners(o.workers * 4 + 10, stop);
  const auth = { authorization: `Bearer ${o.identity.token ?? o.identity.app}` };
  await Promise.all(
    Array.from({ length: o.workers }, async () => {
      while (!stop.aborted) {
        try {
          const res = await keap.fetch(`${o.url}/crm/rest/v2/contacts`, {
            method: "POST",
            headers: auth,
            body: "{}",
            signal: stop,
          });
          await res.arrayBuffer();
          if (res.status === 429) result.throttled++;
          else result.ok++;
        } catch (e) {
          if (stop.aborted) continue;
          result.failed++;
          if (process.env.KEAP_DEBUG && result.failed <= 3) {
            process.stderr.write(`failed ${process.pid} ${Date.now()} ${String(e)}\n`);
          }
        }
      }
    }),
  );
  result.keap = keap.stats();
  keap.close();
  return result;
}

/** The naive client: one call, sleep `sleepMs`, repeat; no limiter at all. */
export async function naiveLoad(o: {
  url: string;
  token: string;
  durationMs: number;
  sleepMs: number;
}): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, throttled: 0, failed: 0 };
  const end = Date.now() + o.durationMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(`${o.url}/crm/rest/v2/contacts`, {
        method: "POST",
        headers: { authorization: `Bearer ${o.token}` },
        body: "{}",
      });
      await res.arrayBuffer();
      if (res.status === 429) result.throttled++;
      else result.ok++;
    } catch {
      result.failed++;
    }
    await new Promise((r) => setTimeout(r, Math.min(o.sleepMs, Math.max(0, end - Date.now()))));
  }
  return result;
}

/**
 * Requests the simulator's limits allow in `durationMs` from a standing start: the spike rate
 * (plus its burst of one) or the rolling-minute throttle, whichever is lower.
 */
export function allowedRequests(
  limits: { spike: number; throttle: number },
  durationMs: number,
): number {
  const bySpike = 1 + Math.floor((limits.spike * durationMs) / 1000);
  const byThrottle = limits.throttle * Math.ceil(durationMs / 60_000);
  return Math.min(bySpike, byThrottle);
}
