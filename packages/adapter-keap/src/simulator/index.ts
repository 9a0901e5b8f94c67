import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local HTTP server that throttles like Keap's API gateway (docs/keap.md "Simulator"), for
 * offline tests of an integration. Every number defaults to the profile's value in docs/keap.md.
 *
 * The model, per request:
 * 1. Identity: the bearer token (or `X-Keap-API-Key`) is the token (PAT/SAK) or the app (OAuth);
 *    every token belongs to one tenant (`tenant`).
 * 2. SpikeArrest with `UseEffectiveCount`: requests are routed at random to one of `processors`
 *    message processors, which share one effective count per token (PAT/SAK) or app (OAuth):
 *    one request per `1000 / spike` ms with a burst of `spikeBurst` (about 1). Each processor's
 *    clock runs up to `skewMs` ahead of the others, so two requests sent exactly one interval
 *    apart can still be refused: pace with a margin.
 * 3. The product throttle: a rolling minute per token (PAT/SAK) or app (OAuth).
 * 4. The product quota: a calendar day (00:00 UTC) per tenant (PAT/SAK) or app (OAuth), with
 *    `quotaUsed` already consumed on start.
 * 5. The tenant windows: a rolling minute and a calendar day per tenant.
 * A refused request counts nowhere. Every answer carries the `x-keap-*` headers; 429s carry one
 * of the three bodies of docs/keap.md.
 */

export type KeapSimulatorProfile = "oauth" | "pat" | "sak";
export type KeapThrottleCause = "spike" | "throttle" | "quota" | "tenant";

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

export interface KeapSimulatorOptions {
  profile?: KeapSimulatorProfile;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  limits?: KeapSimulatorLimits;
  /** Product quota already used today, per quota scope (default 0). */
  quotaUsed?: number;
  /** Tenant day window already used today (default 0). */
  tenantDayUsed?: number;
  /** Message processors the spike rate is spread over (default 5 for PAT/SAK, 6 for OAuth). */
  processors?: number;
  /** Largest clock lead of one processor over another, in ms (default 2). */
  skewMs?: number;
  /** Requests a processor admits back to back after a quiet period (default 1). */
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

export interface KeapSimulatorStats {
  /** Requests answered 2xx. */
  served: number;
  /** Requests answered 429. */
  throttled: number;
  byCause: Record<KeapThrottleCause, number>;
  /** Requests refused with 401 (no credentials). */
  unauthorized: number;
}

export interface KeapSimulator {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  readonly port: number;
  stats(): KeapSimulatorStats;
  /** Forgets every counter and statistic. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULTS: Record<KeapSimulatorProfile, Required<KeapSimulatorLimits>> = {
  // docs/keap.md "Profiles"; tenant windows at their strictest seen value (5,000 / minute).
  oauth: { spike: 25, throttle: 1_500, quota: 150_000, tenantMinute: 5_000, tenantDay: 250_000 },
  pat: { spike: 5, throttle: 240, quota: 30_000, tenantMinute: 5_000, tenantDay: 250_000 },
  sak: { spike: 5, throttle: 240, quota: 30_000, tenantMinute: 5_000, tenantDay: 250_000 },
};
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
    this.times.push(now);
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

function nonNegative(name: string, value: unknown, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new TypeError(
      `startKeapSimulator: ${name} must be a non-negative ${integer ? "integer" : "number"}`,
    );
  }
  return value;
}

/** Starts the simulator; resolves once it listens. */
export async function startKeapSimulator(
  options: KeapSimulatorOptions = {},
): Promise<KeapSimulator> {
  const profile = options.profile ?? "pat";
  if (!(profile in DEFAULTS)) {
    throw new TypeError(`startKeapSimulator: profile must be "oauth", "pat" or "sak"`);
  }
  const limits = { ...DEFAULTS[profile] };
  for (const [name, value] of Object.entries(options.limits ?? {})) {
    if (!(name in limits)) throw new TypeError(`startKeapSimulator: unknown limit "${name}"`);
    const v = nonNegative(`limits.${name}`, value, 0, name !== "spike");
    if (v <= 0) throw new TypeError(`startKeapSimulator: limits.${name} must be above 0`);
    limits[name as keyof KeapSimulatorLimits] = v;
  }
  const processors = nonNegative("processors", options.processors, PROCESSORS[profile]);
  if (processors < 1) throw new TypeError("startKeapSimulator: processors must be at least 1");
  const skewMs = nonNegative("skewMs", options.skewMs, 2, false);
  const burst = nonNegative("spikeBurst", options.spikeBurst, 1, false);
  if (burst < 1) throw new TypeError("startKeapSimulator: spikeBurst must be at least 1");
  const quotaUsed = nonNegative("quotaUsed", options.quotaUsed, 0);
  const tenantDayUsed = nonNegative("tenantDayUsed", options.tenantDayUsed, 0);
  const latencyMs = nonNegative("latencyMs", options.latencyMs, 0, false);
  const tenantHeaders = options.tenantHeaders ?? "both";
  const tenant = options.tenant ?? "sim.infusionsoft.com";
  const clock = options.clock ?? Date.now;
  const random = options.random ?? Math.random;
  const offsets = Array.from({ length: processors }, () => random() * skewMs);

  let spikes = new Map<string, SpikeArrest>();
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
    if (!spike) spikes.set(id, (spike = new SpikeArrest(limits.spike, burst)));
    let throttle = throttles.get(id);
    if (!throttle) throttles.set(id, (throttle = new RollingWindow(MINUTE_MS)));
    const quotaId = profile === "oauth" ? id : tenant;
    let quota = quotas.get(quotaId);
    if (!quota) quotas.set(quotaId, (quota = new DayCounter(quotaUsed)));

    const processor = Math.min(processors - 1, Math.floor(random() * processors));
    let cause: KeapThrottleCause | undefined;
    if (!spike.admit(now + offsets[processor]!)) cause = "spike";
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
    send(res, 429, headers, body429(cause, id, limits.spike, processors), latencyMs);
  };

  const server = createServer((req, res) => {
    // Throttling happens on arrival; the answer follows once the body is drained.
    const now = clock();
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

/** The three 429 bodies of docs/keap.md. */
function body429(
  cause: KeapThrottleCause,
  id: string,
  spikeRate: number,
  processors: number,
): unknown {
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
  return { code: "429", message: "Quota Exceeded", status: "Request Throttled", details: null };
}

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
