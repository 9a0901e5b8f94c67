import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError } from "@sluice/core";
import { checkOptionNames } from "../options.js";

/**
 * A local HTTP server that throttles like Keap's API gateway (docs/keap.md "The simulator"), for
 * offline tests of an integration. Every number defaults to the profile's value in docs/keap.md.
 *
 * The model, per request (arriving up to `jitterMs` later than sent, as a network adds):
 * 1. Identity: the bearer token (or `X-Keap-API-Key`) is the token (PAT/SAK) or the app (OAuth);
 *    every token belongs to one tenant (`tenant`).
 * 2. SpikeArrest per token (PAT/SAK) or app (OAuth), by `spikeModel`:
 *    - `sliding` (default; Apigee X with `UseEffectiveCount=true`): one count synchronized across
 *      processors over a sliding second, admitting the rate plus a burst of about 10% of it;
 *    - `bucket`: one shared token bucket, one request per `1000 / spike` ms, burst `spikeBurst` (1);
 *    - `perProcessor` (Apigee Edge): the rate split over `processors` message processors, each a
 *      bucket of one, requests routed `roundRobin` or at `random`.
 * 3. The product throttle: a rolling minute per tenant (PAT/SAK) or app (OAuth).
 * 4. The product quota: a calendar day (00:00 UTC) per tenant (PAT/SAK) or app (OAuth), with
 *    `quotaUsed` already consumed on start.
 * 5. The tenant windows: a rolling minute and a calendar day per tenant.
 * A refused request counts nowhere. Every answer carries the `x-keap-*` headers; 429s carry
 * today's bare body, or with `bodies: "2022"` the Apigee faults of that year.
 */

export type KeapSimulatorProfile = "oauth" | "pat" | "sak";
/**
 * Which Keap limit throttled a request: the spike arrest, the throttle, the daily quota, or the
 * tenant throttle (per minute and per day across every token of the tenant).
 */
export type KeapThrottleCause = "spike" | "throttle" | "quota" | "tenant";

/** Limits the simulator enforces, overriding the profile's. */
export interface KeapSimulatorLimits {
  /** SpikeArrest rate per second. */
  spike?: number;
  /** Product throttle per rolling minute. */
  throttle?: number;
  /** Product quota per day (00:00 UTC). */
  quota?: number;
  /** Tenant window per rolling minute. */
  tenantMinute?: number;
  /** Tenant window per day (00:00 UTC). */
  tenantDay?: number;
}

/** How the simulator models Keap's spike arrest. */
export type KeapSpikeModel = "sliding" | "bucket" | "perProcessor";

/** Options of `startKeapSimulator`. */
export interface KeapSimulatorOptions {
  /** Which Keap profile's limits to enforce. */
  profile?: KeapSimulatorProfile;
  /** How SpikeArrest counts (default "sliding"); see the model above. */
  spikeModel?: KeapSpikeModel;
  /** How `perProcessor` routes requests to processors (default "random"). */
  routing?: "roundRobin" | "random";
  /**
   * Network jitter: each request's arrival time at the gateway is later by a random 0 to
   * `jitterMs` ms (default 0), so requests sent in order may arrive out of it.
   */
  jitterMs?: number;
  /**
   * 429 bodies: "today" (default), the bare `Quota Exceeded` body for every cause, as today's
   * gateway sends; "2022": the SpikeArrestViolation fault (with its MessageRate) for spike and the
   * QuotaViolation fault for the throttle, as Apigee Edge sent them.
   */
  bodies?: "today" | "2022";
  /** 0 (default) picks a free port. */
  port?: number;
  /** Address to listen on (default `127.0.0.1`). */
  host?: string;
  /** Limits overriding the profile's. */
  limits?: KeapSimulatorLimits;
  /** Product quota already used today, per quota scope (default 0). */
  quotaUsed?: number;
  /** Tenant day window already used today (default 0). */
  tenantDayUsed?: number;
  /** Message processors (default 5 for PAT/SAK, 6 for OAuth): `perProcessor` splits the rate over them. */
  processors?: number;
  /**
   * `bucket` and `perProcessor`: requests a bucket admits back to back after a quiet period
   * (default 1). `sliding`: requests above the rate admitted in any one second (default 10% of the
   * rate, rounded down).
   */
  spikeBurst?: number;
  /** Tenant windows in the headers: both pipe-separated (default), the minute only, or none. */
  tenantHeaders?: "both" | "minute" | "none";
  /** Send `Retry-After` (seconds) with throttle, quota and tenant 429s (default false). */
  retryAfter?: boolean;
  /** Tenant id every token belongs to (default "sim.infusionsoft.com"). */
  tenant?: string;
  /** Delay before each answer, in ms (default 0). */
  latencyMs?: number;
  /** Wall clock in epoch ms (default `Date.now`); the simulator never reads another clock. */
  clock?: () => number;
  /** Random numbers in [0, 1) for routing and skew (default `Math.random`). */
  random?: () => number;
}

/** What the simulator has served so far. */
export interface KeapSimulatorStats {
  /** Requests answered 2xx. */
  served: number;
  /** Requests answered 429. */
  throttled: number;
  /** Throttled requests by cause. */
  byCause: Record<KeapThrottleCause, number>;
  /** Requests refused with 401 (no credentials). */
  unauthorized: number;
}

/** A running Keap throttle simulator: from `startKeapSimulator`. */
export interface KeapSimulator {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Requests served and throttled so far. */
  stats(): KeapSimulatorStats;
  /** Forgets every counter and statistic. */
  reset(): void;
  /** Stops the server. */
  close(): Promise<void>;
}

const DEFAULTS: Record<KeapSimulatorProfile, Required<KeapSimulatorLimits>> = {
  // docs/keap.md "Profiles"; tenant windows as enforced since 2026-06-08 (10,000 / minute).
  oauth: { spike: 25, throttle: 1_500, quota: 150_000, tenantMinute: 10_000, tenantDay: 250_000 },
  pat: { spike: 5, throttle: 240, quota: 30_000, tenantMinute: 10_000, tenantDay: 250_000 },
  sak: { spike: 5, throttle: 240, quota: 30_000, tenantMinute: 10_000, tenantDay: 250_000 },
};
const OPTION_NAMES = [
  "profile",
  "spikeModel",
  "routing",
  "jitterMs",
  "bodies",
  "port",
  "host",
  "limits",
  "quotaUsed",
  "tenantDayUsed",
  "processors",
  "spikeBurst",
  "tenantHeaders",
  "retryAfter",
  "tenant",
  "latencyMs",
  "clock",
  "random",
];
const PROCESSORS: Record<KeapSimulatorProfile, number> = { oauth: 6, pat: 5, sak: 5 };
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** A rolling window: admitted times, oldest first. */
class RollingWindow {
  private times: number[] = [];
  private head = 0;

  constructor(private readonly windowMs: number) {}

  count(now: number): number {
    while (this.head < this.times.length && this.times[this.head]! <= now - this.windowMs) {
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    return this.times.length - this.head;
  }

  add(now: number): void {
    // Jitter may deliver a request stamped earlier than the last one: keep the times sorted.
    let i = this.times.length;
    while (i > this.head && this.times[i - 1]! > now) i--;
    if (i === this.times.length) this.times.push(now);
    else this.times.splice(i, 0, now);
  }

  /** When the oldest counted request leaves the window. */
  nextFree(now: number): number {
    this.count(now);
    const oldest = this.times[this.head];
    return oldest === undefined ? now : oldest + this.windowMs;
  }
}

/** A calendar-day counter that resets at 00:00 UTC. */
class DayCounter {
  private day = -1;
  private used = 0;

  constructor(private readonly initial: number) {}

  count(now: number): number {
    const day = Math.floor(now / DAY_MS);
    if (day !== this.day) {
      // The amount already used applies to the day the simulator started in.
      this.used = this.day === -1 ? this.initial : 0;
      this.day = day;
    }
    return this.used;
  }

  add(now: number): void {
    this.count(now);
    this.used++;
  }
}

/** Effective-count smoothing: `rate` per second, at most `burst` back to back. */
class SpikeArrest {
  private tokens: number;
  private lastMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  admit(atMs: number): boolean {
    if (atMs > this.lastMs) {
      const gained =
        this.lastMs === Number.NEGATIVE_INFINITY
          ? this.burst
          : ((atMs - this.lastMs) * this.rate) / 1000;
      this.tokens = Math.min(this.burst, this.tokens + gained);
      this.lastMs = atMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One spike arrest per token or app, as the chosen model counts. */
interface SpikeCounter {
  admit(atMs: number): boolean;
}

/** Apigee X effective count: a sliding second shared by every processor. */
class SlidingSpike implements SpikeCounter {
  private readonly window = new RollingWindow(1_000);

  constructor(private readonly allowed: number) {}

  admit(atMs: number): boolean {
    if (this.window.count(atMs) >= this.allowed) return false;
    this.window.add(atMs);
    return true;
  }
}

/** Apigee Edge: the rate split over processors, each a bucket of its own. */
class PerProcessorSpike implements SpikeCounter {
  private readonly buckets: SpikeArrest[];

  constructor(
    rate: number,
    burst: number,
    private readonly route: () => number,
    processors: number,
  ) {
    this.buckets = Array.from(
      { length: processors },
      () => new SpikeArrest(rate / processors, burst),
    );
  }

  admit(atMs: number): boolean {
    return this.buckets[this.route()]!.admit(atMs);
  }
}

function configError(path: string, message: string): ConfigError {
  return new ConfigError([{ path, message }]);
}

function nonNegative(name: string, value: unknown, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw configError(name, `must be a non-negative ${integer ? "integer" : "number"}`);
  }
  return value;
}

function oneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw configError(name, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
  }
  return value as T;
}

/** Starts the simulator; resolves once it listens. */
export async function startKeapSimulator(
  options: KeapSimulatorOptions = {},
): Promise<KeapSimulator> {
  if (options === null || typeof options !== "object") {
    throw configError("", "startKeapSimulator takes an options object");
  }
  checkOptionNames(options, OPTION_NAMES);
  const profile = oneOf("profile", options.profile, ["oauth", "pat", "sak"], "pat");
  const limits = { ...DEFAULTS[profile] };
  const limitsOption = options.limits ?? {};
  checkOptionNames(limitsOption, Object.keys(limits), "limits");
  for (const [name, value] of Object.entries(limitsOption)) {
    const v = nonNegative(`limits.${name}`, value, 0, name !== "spike");
    if (v <= 0) throw configError(`limits.${name}`, "must be above 0");
    limits[name as keyof KeapSimulatorLimits] = v;
  }
  const spikeModel = oneOf("spikeModel", options.spikeModel, SPIKE_MODELS, "sliding");
  const routing = oneOf("routing", options.routing, ["roundRobin", "random"] as const, "random");
  const bodies = oneOf("bodies", options.bodies, ["today", "2022"] as const, "today");
  const jitterMs = nonNegative("jitterMs", options.jitterMs, 0, false);
  const processors = nonNegative("processors", options.processors, PROCESSORS[profile]);
  if (processors < 1) throw configError("processors", "must be at least 1");
  const defaultBurst = spikeModel === "sliding" ? Math.floor(limits.spike / 10) : 1;
  const burst = nonNegative("spikeBurst", options.spikeBurst, defaultBurst, false);
  if (spikeModel !== "sliding" && burst < 1) {
    throw configError("spikeBurst", "must be at least 1 for a bucket");
  }
  const quotaUsed = nonNegative("quotaUsed", options.quotaUsed, 0);
  const tenantDayUsed = nonNegative("tenantDayUsed", options.tenantDayUsed, 0);
  const latencyMs = nonNegative("latencyMs", options.latencyMs, 0, false);
  const tenantHeaders = oneOf(
    "tenantHeaders",
    options.tenantHeaders,
    ["both", "minute", "none"] as const,
    "both",
  );
  if (options.retryAfter !== undefined && typeof options.retryAfter !== "boolean") {
    throw configError("retryAfter", "must be true or false");
  }
  if (
    options.tenant !== undefined &&
    (typeof options.tenant !== "string" || options.tenant === "")
  ) {
    throw configError("tenant", "must be a non-empty string");
  }
  const tenant = options.tenant ?? "sim.infusionsoft.com";
  for (const name of ["clock", "random"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw configError(name, "must be a function");
    }
  }
  const clock = options.clock ?? Date.now;
  const random = options.random ?? Math.random;
  let turn = 0;
  const route =
    routing === "roundRobin"
      ? () => turn++ % processors
      : () => Math.min(processors - 1, Math.floor(random() * processors));
  const newSpike = (): SpikeCounter => {
    if (spikeModel === "sliding") return new SlidingSpike(Math.floor(limits.spike) + burst);
    if (spikeModel === "bucket") return new SpikeArrest(limits.spike, burst);
    return new PerProcessorSpike(limits.spike, burst, route, processors);
  };

  let spikes = new Map<string, SpikeCounter>();
  let throttles = new Map<string, RollingWindow>();
  let quotas = new Map<string, DayCounter>();
  let tenantMinute = new RollingWindow(MINUTE_MS);
  let tenantDay = new DayCounter(tenantDayUsed);
  let stats = emptyStats();

  const reset = () => {
    spikes = new Map();
    throttles = new Map();
    quotas = new Map();
    tenantMinute = new RollingWindow(MINUTE_MS);
    tenantDay = new DayCounter(tenantDayUsed);
    stats = emptyStats();
  };

  const answer = (req: IncomingMessage, res: ServerResponse, now: number) => {
    const id = credential(req);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (id === undefined) {
      stats.unauthorized++;
      // A 401 carries every header name with blank values (docs/keap.md).
      for (const name of BLANK_HEADERS) headers[name] = "";
      send(res, 401, headers, { message: "Invalid Access Token" }, latencyMs);
      return;
    }
    let spike = spikes.get(id);
    if (!spike) spikes.set(id, (spike = newSpike()));
    // OAuth counts per app; PAT/SAK throttle and quota per tenant (docs/keap.md "Scopes").
    const countedId = profile === "oauth" ? id : tenant;
    let throttle = throttles.get(countedId);
    if (!throttle) throttles.set(countedId, (throttle = new RollingWindow(MINUTE_MS)));
    const quotaId = countedId;
    let quota = quotas.get(quotaId);
    if (!quota) quotas.set(quotaId, (quota = new DayCounter(quotaUsed)));

    let cause: KeapThrottleCause | undefined;
    if (!spike.admit(now)) cause = "spike";
    else if (throttle.count(now) >= limits.throttle) cause = "throttle";
    else if (quota.count(now) >= limits.quota) cause = "quota";
    else if (
      tenantMinute.count(now) >= limits.tenantMinute ||
      tenantDay.count(now) >= limits.tenantDay
    ) {
      cause = "tenant";
    }
    if (cause === undefined) {
      throttle.add(now);
      quota.add(now);
      tenantMinute.add(now);
      tenantDay.add(now);
    }

    const nextDay = (Math.floor(now / DAY_MS) + 1) * DAY_MS;
    const throttleUsed = throttle.count(now);
    const quotaCount = quota.count(now);
    Object.assign(headers, {
      "x-keap-product-spike-limit": "",
      "x-keap-product-throttle-limit": String(limits.throttle),
      "x-keap-product-throttle-available": String(Math.max(0, limits.throttle - throttleUsed)),
      "x-keap-product-throttle-used": String(throttleUsed),
      "x-keap-product-throttle-time-unit": "minute",
      "x-keap-product-throttle-interval": "1",
      "x-keap-product-quota-limit": String(limits.quota),
      "x-keap-product-quota-available": String(Math.max(0, limits.quota - quotaCount)),
      "x-keap-product-quota-used": String(quotaCount),
      "x-keap-product-quota-time-unit": "day",
      "x-keap-product-quota-interval": "1",
      "x-keap-product-quota-expiry-time": String(nextDay),
      "x-keap-tenant-id": tenant,
    });
    if (tenantHeaders !== "none") {
      const minuteUsed = tenantMinute.count(now);
      const dayUsed = tenantDay.count(now);
      const both = tenantHeaders === "both";
      const pair = (m: number, d: number) => (both ? `${m}|${d}` : String(m));
      Object.assign(headers, {
        "x-keap-tenant-throttle-limit": pair(limits.tenantMinute, limits.tenantDay),
        "x-keap-tenant-throttle-time-unit": both ? "minute|day" : "minute",
        "x-keap-tenant-throttle-interval": both ? "1|1" : "1",
        "x-keap-tenant-throttle-available": pair(
          Math.max(0, limits.tenantMinute - minuteUsed),
          Math.max(0, limits.tenantDay - dayUsed),
        ),
        "x-keap-tenant-throttle-used": pair(minuteUsed, dayUsed),
      });
    }

    if (cause === undefined) {
      stats.served++;
      send(res, 200, headers, { ok: true, method: req.method, path: req.url }, latencyMs);
      return;
    }
    stats.throttled++;
    stats.byCause[cause]++;
    if (options.retryAfter && cause !== "spike") {
      const at =
        cause === "throttle"
          ? throttle.nextFree(now)
          : cause === "quota"
            ? nextDay
            : tenantMinute.count(now) >= limits.tenantMinute
              ? tenantMinute.nextFree(now)
              : nextDay;
      headers["retry-after"] = String(Math.max(1, Math.ceil((at - now) / 1000)));
    }
    send(res, 429, headers, body429(cause, id, limits.spike, processors, bodies), latencyMs);
  };

  const server = createServer((req, res) => {
    // Throttling happens on arrival: now, plus the network's jitter. The answer follows once the
    // body is drained.
    const now = clock() + (jitterMs > 0 ? random() * jitterMs : 0);
    req.on("data", () => {});
    req.on("end", () => answer(req, res, now));
    req.on("error", () => res.destroy());
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats: () => structuredClone(stats),
    reset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function emptyStats(): KeapSimulatorStats {
  return {
    served: 0,
    throttled: 0,
    byCause: { spike: 0, throttle: 0, quota: 0, tenant: 0 },
    unauthorized: 0,
  };
}

const BLANK_HEADERS = [
  "x-keap-product-spike-limit",
  "x-keap-product-throttle-limit",
  "x-keap-product-throttle-available",
  "x-keap-product-quota-limit",
  "x-keap-product-quota-available",
  "x-keap-product-quota-expiry-time",
  "x-keap-tenant-throttle-limit",
  "x-keap-tenant-throttle-available",
];

function credential(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  const key = req.headers["x-keap-api-key"];
  return typeof key === "string" && key.trim() !== "" ? key.trim() : undefined;
}

/** The 429 bodies of docs/keap.md: today's bare body, or the faults of 2022. */
function body429(
  cause: KeapThrottleCause,
  id: string,
  spikeRate: number,
  processors: number,
  bodies: "today" | "2022",
): unknown {
  if (bodies === "today") return BARE_BODY;
  if (cause === "spike") {
    // The effective period is the base second times the processor count (docs/keap.md).
    const rate = `MessageRate{messagesPerPeriod=${spikeRate}, periodInMicroseconds=${processors * 1_000_000}, maxBurstMessageCount=1.0}`;
    return {
      fault: {
        faultstring: `Spike arrest violation. Allowed rate : ${rate}`,
        detail: { errorcode: "policies.ratelimit.SpikeArrestViolation" },
      },
    };
  }
  if (cause === "throttle") {
    return {
      fault: {
        faultstring: `Rate limit quota violation. Quota limit exceeded. Identifier : ${id.slice(0, 8)}`,
        detail: { errorcode: "policies.ratelimit.QuotaViolation" },
      },
    };
  }
  return BARE_BODY;
}

const BARE_BODY = {
  code: "429",
  message: "Quota Exceeded",
  status: "Request Throttled",
  details: null,
};
const SPIKE_MODELS: readonly KeapSpikeModel[] = ["sliding", "bucket", "perProcessor"];

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: unknown,
  latencyMs: number,
): void {
  const write = () => {
    if (res.destroyed) return;
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  };
  if (latencyMs > 0) setTimeout(write, latencyMs);
  else write();
}
