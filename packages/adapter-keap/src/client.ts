import {
  ConfigError,
  type ConfigIssue,
  createLimiter,
  durationToMs,
  invalidArgument,
  type Lease,
  type Limiter,
  LimitTimeoutError,
  type Observation,
  type OnStoreError,
  type Policy,
  type Store,
} from "@sluice/core";
import {
  classify429,
  type KeapMessageRate,
  type KeapThrottleCause,
  MAX_429_BODY,
} from "./causes.js";
import { KeapQuotaExhaustedError } from "./errors.js";
import { type KeapHeaderIssue, parseKeapHeadersDetailed } from "./headers.js";
import { type KeapProfileName, keapPartitions, keapPolicies, spikeSpacingMs } from "./profiles.js";

/** Profile names as `createKeapClient` takes them (the `keap:` prefix is optional). */
export type KeapClientProfile = "oauth" | "pat" | "sak" | "legacy" | "org-daily-2500";

export interface KeapIdentity {
  /** OAuth client id (profiles `oauth`, `legacy`). */
  app?: string;
  /** Keap tenant (app name, e.g. "ab103"): PAT/SAK, org-daily-2500, and optional for OAuth. */
  tenant?: string;
  /** The PAT or SAK itself or any stable name for it (PAT/SAK): spike and throttle are per key. */
  token?: string;
}

export interface KeapClientOptions {
  profile: KeapClientProfile | KeapProfileName;
  store: Store;
  identity: KeapIdentity;
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** 429 retries per call (default 4). */
  maxRetries?: number;
  /** Longest a `keap.fetch` call waits in total, retries included (default 60,000 ms). */
  maxWaitMs?: number;
  /** Policy name -> fields replacing the profile's, e.g. `{ quota: { limit: 50_000 } }`. */
  overrides?: Record<string, Record<string, unknown>>;
  /** Day boundary of the org-daily-2500 `daily` window (IANA zone, default UTC). */
  timeZone?: string;
  /** Store namespace (default "keap"). */
  prefix?: string;
  /** Spike pacing margin below the nominal rate (default 0.1, i.e. 10%). */
  spikeMargin?: number;
  /** Passed to the limiter (default "deny"). */
  onStoreError?: OnStoreError;
  /** Longest wait for one store call (default 1000 ms). */
  timeoutMs?: number;
  /** Random numbers in [0, 1) for backoff jitter (default `Math.random`). */
  random?: () => number;
}

export interface KeapClientEvents {
  /** A rate-limit header value that was malformed, negative, huge or non-numeric. */
  headerIgnored: KeapHeaderIssue & { url: string };
  /** A 429: its cause, the attempt it ended (1-based) and what happens next. */
  throttled: {
    url: string;
    cause: KeapThrottleCause;
    attempt: number;
    /** Backoff before the retry; undefined when the call gives up. */
    retryInMs: number | undefined;
  };
  /** Spike pacing changed: after a spike 429, or recovering after a quiet period. */
  pacing: { spacingMs: number; reason: "spike" | "recovered" };
  /** Reconciling a response failed in the store; the response is returned anyway. */
  reconcileFailed: { url: string; error: unknown };
}
export type KeapClientEventName = keyof KeapClientEvents;

export interface KeapClient {
  /** `fetch`, paced to the profile's limits, reconciled with Keap's headers, retrying 429s. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The underlying limiter (every policy of the profile), for composition. */
  readonly limiter: Limiter;
  /** The key every decision of this client uses. */
  readonly key: Readonly<Record<string, string>>;
  /** The policies in force, spike pacing included. */
  readonly policies: readonly Policy[];
  on<E extends KeapClientEventName>(
    event: E,
    listener: (payload: KeapClientEvents[E]) => void,
  ): () => void;
  /** Stops the client: waiting and later calls reject. */
  close(): void;
}

/** Nominal spike rates per second (docs/keap.md "Profiles"). */
const SPIKE_RATE: Record<KeapClientProfile, number> = {
  oauth: 25,
  pat: 5,
  sak: 5,
  legacy: 25,
  "org-daily-2500": 0,
};
/** Identity fields each profile needs (docs/keap.md "Policy names"). */
const REQUIRED: Record<KeapClientProfile, readonly (keyof KeapIdentity)[]> = {
  oauth: ["app"],
  pat: ["tenant", "token"],
  sak: ["tenant", "token"],
  legacy: ["app"],
  "org-daily-2500": ["tenant"],
};
/** Policies whose charge a 429 gives back: the server did not count the request. */
const COUNTED = new Set(["throttle", "quota", "tenantMinute", "tenantDay", "pool", "daily"]);
/** Daily windows: exhausted beyond `maxWaitMs` means `QUOTA_EXHAUSTED`. */
const DAILY = new Set(["quota", "tenantDay", "daily"]);
const DAY_MS = 86_400_000;
/** Longest spike slow-down, as a multiple of the configured spacing. */
const MAX_SLOWDOWN = 8;
const SLOWDOWN = 1.25;
/** Quiet period after a spike 429 before pacing speeds up again, and the step between speed-ups. */
const QUIET_MS = 5_000;
const RECOVER_STEP_MS = 1_000;
const MAX_IDENTITY_LENGTH = 512;
/**
 * A client that has sent nothing for this long sends on a cold connection (undici keeps idle
 * connections 4 s): setting it up (and, in a new process, loading the HTTP client) delays that
 * request on the wire, so the next one could arrive less than one spike interval after it. The
 * next spike slot after a cold request is therefore held back by COLD_HOLD_MS or one interval,
 * whichever is longer.
 */
const COLD_AFTER_MS = 4_000;
const COLD_HOLD_MS = 250;
/** An admitted request that leaves this much later moves the next spike slot (see holdSpikeIfLate). */
const LATE_SEND_MS = 1;

/** Builds a Keap client: see docs/keap.md "The client". */
export function createKeapClient(options: KeapClientOptions): KeapClient {
  return new KeapClientImpl(options);
}

class KeapClientImpl implements KeapClient {
  readonly limiter: Limiter;
  readonly key: Readonly<Record<string, string>>;
  private readonly refunder: Limiter;
  /** The legacy profile gains a `throttle` once headers report one (docs/keap.md). */
  private readonly legacy: boolean;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly maxRetries: number;
  private readonly maxWaitMs: number;
  private readonly random: () => number;
  private readonly margin: number;
  private readonly listeners = new Map<string, Set<(payload: never) => void>>();
  private basePolicies: Policy[];
  private readonly spikeIndex: number;
  /** Configured spike spacing and the one in force (ms). */
  private spikeBaseMs = 0;
  private spikeMs = 0;
  private lastSpikeAt = 0;
  private lastRecoverAt = 0;
  private readonly leaseTtlMs: number | undefined;
  private lastAdmitAt = Number.NEGATIVE_INFINITY;

  constructor(options: KeapClientOptions) {
    if (options === null || typeof options !== "object") {
      throw invalidArgument("createKeapClient needs an options object");
    }
    const profile = shortProfile(options.profile);
    const store = options.store as unknown;
    if (
      store === null ||
      typeof store !== "object" ||
      typeof (store as Store).execute !== "function"
    ) {
      throw invalidArgument("store must be a sluice Store (an object with execute())");
    }
    this.key = identityKey(profile, options.identity);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw invalidArgument("fetch must be a function");
    this.fetchImpl = fetchImpl;
    this.maxRetries = wholeNumber(options.maxRetries, "maxRetries", 4, 100);
    this.maxWaitMs = wholeNumber(options.maxWaitMs, "maxWaitMs", 60_000, 2 ** 31 - 1);
    this.random = typeof options.random === "function" ? options.random : Math.random;
    const margin = options.spikeMargin ?? 0.1;
    if (typeof margin !== "number" || !Number.isFinite(margin) || margin < 0 || margin > 10) {
      throw invalidArgument("spikeMargin must be a number from 0 to 10");
    }
    this.margin = margin;

    const name = `keap:${profile}` as KeapProfileName;
    let policies = keapPolicies(name, { tenant: this.key.tenant !== undefined });
    if (SPIKE_RATE[profile] > 0 && options.overrides?.spike === undefined) {
      policies = policies.map((p) =>
        p.name === "spike" && p.kind === "tokenBucket"
          ? { ...p, refill: { tokens: 1, every: spikeSpacingMs(SPIKE_RATE[profile], margin) } }
          : p,
      );
    }
    if (options.timeZone !== undefined) {
      if (profile !== "org-daily-2500") {
        throw invalidArgument(
          `timeZone applies to the org-daily-2500 profile only (Keap's windows reset at 00:00 UTC)`,
        );
      }
      policies = policies.map((p) =>
        p.name === "daily" ? ({ ...p, timeZone: options.timeZone } as Policy) : p,
      );
    }
    const overridden = applyOverrides(policies, options.overrides);
    this.basePolicies = overridden.policies;
    this.spikeIndex = this.basePolicies.findIndex(
      (p) => p.name === "spike" && p.kind === "tokenBucket",
    );
    const spike = this.basePolicies[this.spikeIndex];
    if (spike?.kind === "tokenBucket") {
      this.spikeBaseMs = this.spikeMs = everyMs(spike.refill.every);
    }
    const concurrent = this.basePolicies.find((p) => p.kind === "concurrency");
    this.leaseTtlMs =
      concurrent?.kind === "concurrency" ? everyMs(concurrent.leaseTtl ?? 0) : undefined;

    const shared = {
      store: options.store,
      prefix: options.prefix ?? "keap",
      partitionBy: keapPartitions[name],
      ...(options.onStoreError === undefined ? {} : { onStoreError: options.onStoreError }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    try {
      this.limiter = createLimiter({ ...shared, policies: this.basePolicies });
    } catch (e) {
      throw e instanceof ConfigError ? renameIssues(e, overridden.names, this.basePolicies) : e;
    }
    // Same store, prefix and partition, so the same state: refunds reach the counted policies
    // and leave the spike slot spent.
    this.refunder = createLimiter({ ...shared, policies: this.countedPolicies() });
    this.legacy = profile === "legacy";
  }

  /** The policies a 429 gives back (never empty: every profile has a daily or pool window). */
  private countedPolicies(): Policy[] {
    return this.basePolicies.filter((p) => COUNTED.has(p.name) && p.kind !== "concurrency");
  }

  get policies(): readonly Policy[] {
    return this.currentPolicies();
  }

  on<E extends KeapClientEventName>(
    event: E,
    listener: (payload: KeapClientEvents[E]) => void,
  ): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  close(): void {
    this.limiter.close("the Keap client was closed");
    this.refunder.close("the Keap client was closed");
  }

  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const deadline = Date.now() + this.maxWaitMs;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const url = describeUrl(input);
    const replayable = canReplay(input, init);
    let last429: Response | undefined;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const admitted = await this.admit(deadline, signal, last429);
      if (admitted instanceof Response) return admitted;
      const { lease } = admitted;
      this.holdSpikeIfLate(admitted.atMs);
      let res: Response;
      try {
        res = await this.send(input, init, lease);
      } finally {
        await lease?.release().catch(() => {});
      }
      const headers = parseKeapHeadersDetailed(res.headers, { nowMs: Date.now() });
      for (const issue of headers.issues) this.emit("headerIgnored", { ...issue, url });
      await this.reconcile(headers.observations, url);
      if (res.status !== 429) {
        this.recover();
        return res;
      }

      last429 = res;
      const { cause, messageRate } = classify429(await peekBody(res), headers.observations);
      await this.refund(url);
      if (cause === "spike") this.slowDown(messageRate);
      if (cause === "quota" || cause === "tenantDay") {
        const resetAtMs = dailyReset(headers.observations, cause);
        // The server may not have said so in its headers: record the exhaustion locally.
        await this.limiter
          .reconcile(this.key, { policy: cause, remaining: 0, resetAtMs })
          .catch(() => {});
        if (resetAtMs > deadline) {
          this.emit("throttled", { url, cause, attempt, retryInMs: undefined });
          await discard(res);
          throw new KeapQuotaExhaustedError(cause, resetAtMs);
        }
      }
      const delay = Math.max(this.backoff(cause, attempt), headers.retryAfterMs ?? 0);
      const giveUp = attempt > this.maxRetries || !replayable || Date.now() + delay > deadline;
      this.emit("throttled", { url, cause, attempt, retryInMs: giveUp ? undefined : delay });
      if (giveUp) return res;
      await discard(res);
      await sleep(delay, signal);
    }
  }

  /**
   * Waits for capacity within the call's budget. Resolves with when it was admitted and the
   * lease of a concurrency profile, or with the last 429 when the budget runs out after a 429.
   */
  private async admit(
    deadline: number,
    signal: AbortSignal | undefined,
    last429: Response | undefined,
  ): Promise<{ lease: Lease | undefined; atMs: number } | Response> {
    const timeoutMs = Math.max(0, deadline - Date.now());
    const opts = signal ? { signal, timeoutMs } : { timeoutMs };
    try {
      if (this.leaseTtlMs !== undefined) {
        const lease = await this.limiter.acquire(this.key, opts);
        return { lease, atMs: Date.now() };
      }
      await this.limiter.wait(this.key, opts);
      const now = Date.now();
      const cold = this.spikeIndex >= 0 && now - this.lastAdmitAt > COLD_AFTER_MS;
      this.lastAdmitAt = now;
      if (cold) {
        await this.holdSpike(Date.now() + Math.max(this.spikeMs, COLD_HOLD_MS));
      }
      return { lease: undefined, atMs: now };
    } catch (e) {
      if (!(e instanceof LimitTimeoutError)) throw e;
      const exhausted = await this.exhaustedDaily(deadline);
      if (exhausted) {
        if (last429) await discard(last429);
        throw exhausted;
      }
      if (last429) return last429;
      throw e;
    }
  }

  /** A daily window with nothing left that resets after `deadline`, as the error to throw. */
  private async exhaustedDaily(deadline: number): Promise<KeapQuotaExhaustedError | undefined> {
    const d = await this.limiter.peek(this.key).catch(() => undefined);
    for (const p of d?.policies ?? []) {
      if (DAILY.has(p.name) && p.remaining < 1 && p.resetAtMs > deadline) {
        return new KeapQuotaExhaustedError(p.name, p.resetAtMs);
      }
    }
    return undefined;
  }

  /**
   * A request that leaves later than it was admitted (a busy event loop, a garbage collection)
   * would reach Keap less than one spike interval before the next one: hold the next spike slot
   * back until one interval after this request actually leaves. Costs a store call only then.
   */
  private holdSpikeIfLate(admittedAtMs: number): void {
    if (this.spikeIndex < 0) return;
    const now = Date.now();
    if (now - admittedAtMs < LATE_SEND_MS) return;
    void this.holdSpike(now + 1);
  }

  /**
   * No spike slot before `untilMs` plus one interval. Called right after an admission, when the
   * bucket is empty: reconcile holds its refill back until `untilMs`. A failure only loses the hold.
   */
  private holdSpike(untilMs: number): Promise<void> {
    return this.limiter
      .reconcile(this.key, { policy: "spike", remaining: 0, resetAtMs: untilMs })
      .catch(() => {});
  }

  private async send(
    input: string | URL | Request,
    init: RequestInit | undefined,
    lease: Lease | undefined,
  ): Promise<Response> {
    const request = input instanceof Request ? input.clone() : input;
    if (lease === undefined || this.leaseTtlMs === undefined) return this.fetchImpl(request, init);
    // Keep the concurrency slot while the request runs.
    const every = Math.max(1_000, Math.floor(this.leaseTtlMs / 2));
    const timer = setInterval(() => void lease.renew().catch(() => {}), every);
    timer.unref?.();
    try {
      return await this.fetchImpl(request, init);
    } finally {
      clearInterval(timer);
    }
  }

  private async reconcile(observations: Observation[], url: string): Promise<void> {
    if (observations.length === 0) return;
    if (this.legacy) this.learnLegacyThrottle(observations);
    try {
      await this.limiter.reconcile(this.key, observations);
    } catch (error) {
      this.emit("reconcileFailed", { url, error });
    }
  }

  /**
   * The legacy gateway's per-minute throttle is not published: the first response that reports
   * one adds it as a 1-minute sliding window per app, at the reported limit.
   */
  private learnLegacyThrottle(observations: Observation[]): void {
    if (this.basePolicies.some((p) => p.name === "throttle")) return;
    const seen = observations.find((o) => o.policy === "throttle" && o.limit !== undefined);
    if (seen?.limit === undefined) return;
    this.basePolicies = [
      ...this.basePolicies,
      { kind: "slidingWindow", name: "throttle", scope: ["app"], limit: seen.limit, window: "1m" },
    ];
    this.limiter.updatePolicies(this.currentPolicies());
    this.refunder.updatePolicies(this.countedPolicies());
  }

  private async refund(url: string): Promise<void> {
    try {
      await this.refunder.refund(this.key);
    } catch (error) {
      this.emit("reconcileFailed", { url, error });
    }
  }

  /** Backoff before retrying a 429, with full jitter on the upper half. */
  private backoff(cause: KeapThrottleCause, attempt: number): number {
    const jitter = 0.5 + this.random() / 2;
    if (cause === "spike") {
      // One to two spike intervals: the slowed pacing does the rest.
      return Math.ceil(this.spikeMs * (1 + this.random()));
    }
    // Counted windows: their state was reconciled, so waiting for capacity waits for the window;
    // a short exponential backoff covers a server that did not say.
    const base = cause === "unknown" ? 1_000 : 250;
    return Math.ceil(Math.min(30_000, base * 2 ** (attempt - 1)) * jitter);
  }

  /** Slows spike pacing after a spike 429 (docs/keap.md "Adapter behaviour"). */
  private slowDown(rate: KeapMessageRate | undefined): void {
    if (this.spikeIndex < 0) return;
    this.lastSpikeAt = Date.now();
    let next = this.spikeMs * SLOWDOWN;
    const server = rate ? serverSpacing(rate, this.margin) : undefined;
    if (server !== undefined && server > this.spikeMs) next = server;
    next = Math.min(Math.ceil(next), this.spikeBaseMs * MAX_SLOWDOWN);
    if (next === this.spikeMs) return;
    this.spikeMs = next;
    this.limiter.updatePolicies(this.currentPolicies());
    this.emit("pacing", { spacingMs: next, reason: "spike" });
  }

  /** After a quiet period, speeds pacing back up a step at a time. */
  private recover(): void {
    if (this.spikeMs <= this.spikeBaseMs) return;
    const now = Date.now();
    if (now - this.lastSpikeAt < QUIET_MS || now - this.lastRecoverAt < RECOVER_STEP_MS) return;
    this.lastRecoverAt = now;
    this.spikeMs = Math.max(this.spikeBaseMs, Math.floor(this.spikeMs / SLOWDOWN));
    this.limiter.updatePolicies(this.currentPolicies());
    this.emit("pacing", { spacingMs: this.spikeMs, reason: "recovered" });
  }

  private currentPolicies(): Policy[] {
    return this.basePolicies.map((p, i) =>
      i === this.spikeIndex && p.kind === "tokenBucket" && this.spikeMs !== this.spikeBaseMs
        ? { ...p, refill: { tokens: 1, every: this.spikeMs } }
        : p,
    );
  }

  private emit<E extends KeapClientEventName>(event: E, payload: KeapClientEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as (p: KeapClientEvents[E]) => void)(payload);
      } catch {
        // A listener's failure is not the request's.
      }
    }
  }
}

function shortProfile(profile: unknown): KeapClientProfile {
  const name =
    typeof profile === "string" && profile.startsWith("keap:") ? profile.slice(5) : profile;
  if (typeof name !== "string" || !(name in REQUIRED)) {
    throw invalidArgument(
      `profile must be one of "oauth", "pat", "sak", "legacy", "org-daily-2500" (got ${JSON.stringify(profile)})`,
    );
  }
  return name as KeapClientProfile;
}

function identityKey(profile: KeapClientProfile, identity: unknown): Record<string, string> {
  if (identity === null || typeof identity !== "object") {
    throw invalidArgument(`identity must be an object with ${REQUIRED[profile].join(", ")}`);
  }
  const key: Record<string, string> = {};
  const fields = profile === "oauth" ? ["app", "tenant"] : REQUIRED[profile];
  for (const field of fields) {
    const value = (identity as Record<string, unknown>)[field];
    const required = REQUIRED[profile].includes(field as keyof KeapIdentity);
    if (value === undefined && !required) continue;
    if (typeof value !== "string" || value === "" || value.length > MAX_IDENTITY_LENGTH) {
      throw invalidArgument(
        `identity.${field} must be a non-empty string of at most ${MAX_IDENTITY_LENGTH} characters (profile "${profile}" scopes on it)`,
      );
    }
    key[field] = value;
  }
  return key;
}

function wholeNumber(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidArgument(`${name} must be a whole number from 0 to ${max}`);
  }
  return value;
}

/**
 * The spike spacing a MessageRate asks for. Keap's period is the base second times the
 * processor count (docs/keap.md), so a period of whole seconds up to a minute means
 * `messagesPerPeriod` per second; any other period is taken literally.
 */
function serverSpacing(rate: KeapMessageRate, margin: number): number {
  const perSecond =
    rate.periodMs % 1000 === 0 && rate.periodMs <= 60_000
      ? rate.messagesPerPeriod
      : (rate.messagesPerPeriod * 1000) / rate.periodMs;
  return spikeSpacingMs(perSecond, margin);
}

function everyMs(value: unknown): number {
  const ms = durationToMs(value);
  return typeof ms === "number" ? ms : 0;
}

function applyOverrides(
  policies: Policy[],
  overrides: unknown,
): { policies: Policy[]; names: Map<number, string> } {
  const names = new Map<number, string>();
  if (overrides === undefined) return { policies, names };
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    throw new ConfigError([
      { path: "overrides", message: "must be an object of policy name -> fields" },
    ]);
  }
  const issues: ConfigIssue[] = [];
  const out = policies.map((p) => ({ ...p }) as Policy);
  for (const [name, fields] of Object.entries(overrides as Record<string, unknown>)) {
    const i = out.findIndex((p) => p.name === name);
    if (i < 0) {
      issues.push({
        path: `overrides.${name}`,
        message: `the profile has no policy "${name}" (it has ${policies.map((p) => p.name).join(", ")})`,
      });
      continue;
    }
    if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
      issues.push({ path: `overrides.${name}`, message: "must be an object of policy fields" });
      continue;
    }
    if ("name" in fields && (fields as { name: unknown }).name !== name) {
      issues.push({ path: `overrides.${name}.name`, message: "a policy keeps its name" });
      continue;
    }
    out[i] = { ...out[i], ...(fields as object) } as Policy;
    names.set(i, name);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { policies: out, names };
}

/** Points a policy's config issues at the override that caused them. */
function renameIssues(e: ConfigError, names: Map<number, string>, policies: Policy[]): ConfigError {
  const issues = e.issues.map((issue) => {
    const m = /^policies\[(\d+)\](.*)$/.exec(issue.path);
    if (!m) return issue;
    const i = Number(m[1]);
    const name = names.get(i) ?? policies[i]?.name;
    const prefix = names.has(i) ? "overrides" : "policies";
    return { ...issue, path: `${prefix}.${name}${m[2]}` };
  });
  return new ConfigError(issues, { cause: e });
}

function dailyReset(observations: readonly Observation[], policy: string): number {
  const seen = observations.find((o) => o.policy === policy && o.resetAtMs !== undefined);
  if (seen?.resetAtMs !== undefined) return seen.resetAtMs;
  return (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
}

/** Reads up to MAX_429_BODY of a response's body without consuming it for the caller. */
async function peekBody(res: Response): Promise<string> {
  try {
    const copy = res.clone();
    const reader = copy.body?.getReader();
    if (!reader) return "";
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= MAX_429_BODY) {
        await reader.cancel().catch(() => {});
        break;
      }
    }
    return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, MAX_429_BODY));
  } catch {
    return "";
  }
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Already read or errored: nothing to free.
  }
}

function canReplay(input: string | URL | Request, init: RequestInit | undefined): boolean {
  const body = init?.body;
  if (
    body !== undefined &&
    body !== null &&
    typeof (body as ReadableStream).getReader === "function"
  ) {
    return false;
  }
  return !(input instanceof Request && input.bodyUsed);
}

function describeUrl(input: string | URL | Request): string {
  if (typeof input === "string") return input;
  if (input instanceof URL) return input.href;
  return input.url;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
