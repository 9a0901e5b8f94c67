import {
  ConfigError,
  type ConfigIssue,
  createLimiter,
  type Decision,
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
  isDisguisedThrottle,
  type KeapThrottleCause,
  MAX_429_BODY,
} from "./causes.js";
import { KeapQuotaExhaustedError } from "./errors.js";
import { FineClock } from "./fine-clock.js";
import { type KeapHeaderIssue, parseKeapHeadersDetailed } from "./headers.js";
import { checkKeapClientOptions, checkOptionNames } from "./options.js";
import { SpikePacing } from "./pacing.js";
import { ProbeGate } from "./probe-gate.js";
import { type KeapProfileName, keapPartitions, keapPolicies } from "./profiles.js";
import { RecentQuantile } from "./recent-quantile.js";
import { SharedPacing } from "./shared-pacing.js";
import { SpikeSlots } from "./spike-slots.js";
import { StoreClock } from "./store-clock.js";
import { WireDelay } from "./wire-delay.js";
import { sendMarked, unmarked } from "./wire-times.js";

/** Profile names as `createKeapClient` takes them (the `keap:` prefix is optional). */
export type KeapClientProfile = "oauth" | "pat" | "sak" | "legacy" | "org-daily-2500";

/** Who is calling Keap: the key fields of the profile's policies. */
export interface KeapIdentity {
  /** OAuth client id (profiles `oauth`, `legacy`). */
  app?: string;
  /** Keap tenant (app name, e.g. "ab103"): PAT/SAK, org-daily-2500, and optional for OAuth. */
  tenant?: string;
  /** The PAT or SAK itself or any stable name for it (PAT/SAK): spike arrest is per key. */
  token?: string;
}

/**
 * The function `keap.fetch` sends with: `globalThis.fetch` or any function of its shape, such as
 * undici's `fetch` (whose own `Request`/`RequestInit` types differ from the global ones). Input and
 * init are passed through as given; the response is read as a WHATWG `Response`. Its type is
 * checked only for `status`: undici's `Response` type differs from the DOM typings' (no `bytes()`).
 */
export type KeapFetchFunction = (
  input: never,
  init?: never,
) => Promise<{ readonly status: number }>;

/**
 * Options of `createKeapClient`. Unknown option names and bad values are refused with a
 * `ConfigError`.
 */
export interface KeapClientOptions {
  /**
   * Which Keap limits apply: `oauth`, `pat`, `sak`, `legacy`, `org-daily-2500` (or a custom profile).
   */
  profile: KeapClientProfile | KeapProfileName;
  /** Where the limiter keeps its state; share one Redis or PostgreSQL store across processes. */
  store: Store;
  /** The fields the profile's policies are scoped on (app, tenant, token). */
  identity: KeapIdentity;
  /** Defaults to `globalThis.fetch`. */
  fetch?: KeapFetchFunction;
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
  /** Spike pacing margin below the nominal rate to start from (default 0.1, i.e. 10%). */
  spikeMargin?: number;
  /**
   * Keep spike pacing at `spikeMargin` below the nominal rate instead of adapting towards 2% below
   * it (default false). Adapting finds the gateway's real tolerance at the cost of an occasional
   * spike 429 (retried); strict pacing trades throughput for none at all.
   */
  strict?: boolean;
  /** Passed to the limiter (default "deny"). */
  onStoreError?: OnStoreError;
  /** Longest wait for one store call (default 1000 ms). */
  timeoutMs?: number;
  /** Random numbers in [0, 1) for backoff jitter (default `Math.random`). */
  random?: () => number;
}

const OPTION_NAMES = [
  "profile",
  "store",
  "identity",
  "fetch",
  "maxRetries",
  "maxWaitMs",
  "overrides",
  "timeZone",
  "prefix",
  "spikeMargin",
  "strict",
  "onStoreError",
  "timeoutMs",
  "random",
];

/** Events a KeapClient emits, with their payloads. */
export interface KeapClientEvents {
  /** A rate-limit header value that was malformed, negative, huge or non-numeric. */
  headerIgnored: KeapHeaderIssue & { url: string };
  /**
   * A throttled answer (a 429, an XML-RPC "threads throttled" fault, a 5xx Apigee rate fault): its
   * cause, the attempt it ended (1-based) and what happens next.
   */
  throttled: {
    url: string;
    cause: KeapThrottleCause;
    attempt: number;
    /** Backoff before the retry; undefined when the call gives up. */
    retryInMs: number | undefined;
  };
  /**
   * Spike pacing changed: slower after a spike 429, faster after 2 s without one ("recovered"),
   * or to leave other senders of the same app or tenant their share ("others").
   */
  pacing: { spacingMs: number; reason: "spike" | "recovered" | "others" };
  /** Reconciling a response failed in the store; the response is returned anyway. */
  reconcileFailed: { url: string; error: unknown };
}
/** The name of a client event: a key of {@link KeapClientEvents}. */
export type KeapClientEventName = keyof KeapClientEvents;

/** What a client has done so far (this process). */
export interface KeapClientStats {
  /** Requests sent, retries included. */
  sent: number;
  /** Throttled answers received (429s and disguised ones), by cause; each was retried or returned. */
  throttled: number;
  /** 429 responses by cause. */
  byCause: Record<KeapThrottleCause, number>;
  /** Throttled answers handed back to a caller because retries or `maxWaitMs` ran out. */
  returned: number;
  /** The spike spacing in force (ms). */
  spacingMs: number;
}

/** A Keap API client that keeps within Keap's limits: from `createKeapClient`. */
export interface KeapClient {
  /**
   * `fetch`, paced to the profile's limits, reconciled with Keap's headers, retrying 429s. Bound:
   * hand it to ky, axios (`env.fetch`) or any library that takes a fetch function.
   */
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /** The underlying limiter (every policy of the profile), for composition. */
  readonly limiter: Limiter;
  /** The key every decision of this client uses. */
  readonly key: Readonly<Record<string, string>>;
  /** The policies in force, spike pacing included. */
  readonly policies: readonly Policy[];
  /** Counts since the client was created. */
  stats(): KeapClientStats;
  /**
   * Subscribes to a client event (see {@link KeapClientEvents}).
   *
   * @returns a function that unsubscribes the listener.
   */
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
const MINUTE_MS = 60_000;
/** The spike bucket refills in thousandths of a ms, so fractional spacings are exact. */
const SPIKE_UNITS_PER_MS = 1000;
const MAX_IDENTITY_LENGTH = 512;
/** Bodies read to look for a disguised throttle (XML-RPC fault, 5xx Apigee fault). */
const DISGUISE_BODY = 8 * 1024;
/**
 * A client that has sent nothing for this long sends on a cold connection (undici keeps idle
 * connections 4 s): setting it up (a TCP and TLS handshake, and in a new process loading the HTTP
 * client) delays that request on the wire by an amount the client cannot know in advance, so the
 * next one could arrive less than one spike interval after it. The request surely reached Keap
 * before its answer came back: while it is on its way the next spike slot is kept one interval
 * ahead, and when it is answered the slot moves to one interval after the answer.
 */
const COLD_AFTER_MS = 4_000;
/** A cold or overdue request's hold ends after this long, answered or not. */
const COLD_HOLD_MAX_MS = 1_000;
/**
 * A warm request is overdue once unanswered for this many times its usual round trip (the 90th
 * percentile of recent ones), and never before OVERDUE_MIN_MS (a timer's own lateness).
 */
const OVERDUE_FACTOR = 4;
const OVERDUE_MIN_MS = 5;
/** Round trips seen before one can be overdue. */
const OVERDUE_SEEN = 8;
/** Until a spike 429 is seen, a request this late moves the next spike slot (see `lateSendMs`). */
const LATE_SEND_MS = 2;
/** Close to the spacing that drew the last spike 429, a request this late moves the next slot. */
const MIN_LATE_SEND_MS = 0.5;
/** The most event-loop turns a send waits through for the last fraction of its offset. */
const SPIN_TURNS = 10_000;
/**
 * Quiet time after a spike 429 before pacing catches up on late admissions again: a gateway that
 * refused a gap once most likely counts gaps (a sliding count refuses none at this pace).
 */
const CATCH_UP_AFTER_MS = 5 * 60_000;
/**
 * After a refused burst, processes on the store stop catching up within a read of the shared
 * pacing (100 ms) or two: a spike 429 meanwhile is the same event, another process's last burst.
 */
const BURST_SETTLE_MS = 1_000;
/** Traffic after a cold start before pacing catches up. */
const COLD_CATCH_UP_MS = 2_000;

/** A request let through by the limiter, about to be sent. */
interface Admitted {
  lease: Lease | undefined;
  decision: Decision | undefined;
  /** When the client learned of the admission (client clock). */
  atMs: number;
  /** When the store admitted it, as far as the client can tell (no later than `atMs`). */
  slotAtMs: number;
  /** Admitted while catching up: the bucket held two slots. */
  burst: boolean;
  /** The first request after a quiet spell: it goes out on a cold connection. */
  cold: boolean;
  /** Spike events seen when it was admitted (see `spikeEvents`). */
  spikeEvents: number;
}

/** Builds a Keap client: see docs/keap.md "The client". */
export function createKeapClient(options: KeapClientOptions): KeapClient {
  checkKeapClientOptions(options, OPTION_NAMES);
  return new KeapClientImpl(options);
}

class KeapClientImpl implements KeapClient {
  readonly limiter: Limiter;
  readonly key: Readonly<Record<string, string>>;
  private readonly refunder: Limiter;
  /** The legacy profile gains a `throttle` once headers report one (docs/keap.md). */
  private readonly legacy: boolean;
  private readonly fetchImpl: (
    input: string | URL | Request,
    init: RequestInit | undefined,
  ) => Promise<Response>;
  private readonly maxRetries: number;
  private readonly maxWaitMs: number;
  private readonly random: () => number;
  private readonly listeners = new Map<string, Set<(payload: never) => void>>();
  private basePolicies: Policy[];
  private readonly spikeIndex: number;
  /** Adaptive spike pacing; undefined for profiles without a spike policy. */
  private readonly pacing: SpikePacing | undefined;
  /** The spike bucket at microsecond grain, to move its next slot (undefined without spike). */
  private slots: SpikeSlots | undefined;
  /** Pacing slow-downs exchanged with the other processes on the store. */
  private sharedPacing: SharedPacing | undefined;
  /** How much later than usual a request reached Keap, once its answer is in. */
  private readonly wireDelay = new WireDelay();
  /** How long after its spike slot a request leaves while the spike bucket holds one slot. */
  private readonly sendOffset = new RecentQuantile();
  /** Round trips of warm requests (their 90th percentile): when one is overdue. */
  private readonly usualRtt = new RecentQuantile(32, 0.9);
  /** Reads the store's times (a decision's resets) on this process's clock. */
  private readonly storeClock = new StoreClock();
  /** The wall clock to a fraction of a ms, for the times of spike slots and sends. */
  private readonly clock = new FineClock();
  /** The spike spacing the limiter's policies carry (ms, fractional). */
  private spikeMs = 0;
  private readonly leaseTtlMs: number | undefined;
  private lastAdmitAt = Number.NEGATIVE_INFINITY;
  /**
   * Catching up: the spike bucket holds two slots instead of one, so an admission that a late timer
   * or a busy event loop delayed is followed by the next on schedule, not one spacing after the
   * late one (a scheduler's "theoretical arrival time" with one spacing of tolerance). Requests
   * then leave at the intended rate on average, and a sliding count does not mind; a gateway that
   * counts gaps (a bucket of one) does: after a spike 429 the bucket holds one slot until
   * CATCH_UP_AFTER_MS pass without another.
   */
  private catchUp = false;
  /** Not before then: a cold start's first requests keep to one slot (see `admit`). */
  private catchUpFromMs = 0;
  private lastSpikeAtMs = Number.NEGATIVE_INFINITY;
  /**
   * Spike events so far: this client's slow-downs and refused bursts, and other processes' taken
   * up through the shared pacing. A request admitted before the last one was paced for the pace
   * that event changed: its spike 429 says nothing new, however soon after the event it came.
   */
  private spikeEvents = 0;
  /** The spike spacing in force at the last slow-down: the gateway's edge, as last seen. */
  private edgeMs: number | undefined;
  /** When a catch-up burst was last refused (see `burstRefused`). */
  private lastBurstAtMs = Number.NEGATIVE_INFINITY;
  private readonly gate = new ProbeGate();
  /** When the current run of throttled answers began (no answer went through since). */
  private streakSinceMs: number | undefined;
  /** The cause of the last throttled answer in the run, and how many in a row had it. */
  private runCause: KeapThrottleCause | undefined;
  private runLength = 0;
  private readonly hasQuota: boolean;
  private readonly throttleWindowMs: number;
  private readonly counts: Omit<KeapClientStats, "spacingMs"> = {
    sent: 0,
    throttled: 0,
    byCause: { spike: 0, throttle: 0, quota: 0, tenantMinute: 0, tenantDay: 0, unknown: 0 },
    returned: 0,
  };

  constructor(options: KeapClientOptions) {
    if (options === null || typeof options !== "object") {
      throw invalidArgument("createKeapClient needs an options object");
    }
    checkOptionNames(options, OPTION_NAMES);
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
    const fetchImpl = (options.fetch ?? globalThis.fetch) as unknown;
    if (typeof fetchImpl !== "function") throw invalidArgument("fetch must be a function");
    this.fetchImpl = fetchImpl as KeapClientImpl["fetchImpl"];
    this.maxRetries = wholeNumber(options.maxRetries, "maxRetries", 4, 100);
    this.maxWaitMs = wholeNumber(options.maxWaitMs, "maxWaitMs", 60_000, 2 ** 31 - 1);
    this.random = typeof options.random === "function" ? options.random : Math.random;
    const margin = options.spikeMargin ?? 0.1;
    if (typeof margin !== "number" || !Number.isFinite(margin) || margin < 0 || margin > 10) {
      throw invalidArgument("spikeMargin must be a number from 0 to 10");
    }
    const strict = options.strict ?? false;
    if (typeof strict !== "boolean") throw invalidArgument("strict must be true or false");

    const name = `keap:${profile}` as KeapProfileName;
    let policies = keapPolicies(name, { tenant: this.key.tenant !== undefined });
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
      // An overridden spike policy sets the nominal rate; pacing starts `margin` below it.
      const overriddenRate =
        options.overrides?.spike === undefined
          ? undefined
          : (1000 * spike.refill.tokens) / Math.max(1, everyMs(spike.refill.every));
      const nominal = overriddenRate ?? SPIKE_RATE[profile];
      const throttle = this.basePolicies.find((p) => p.name === "throttle");
      const throttleSpacing =
        throttle?.kind === "slidingWindow" || throttle?.kind === "fixedWindow"
          ? everyMs(throttle.window) / throttle.limit
          : 0;
      this.pacing = new SpikePacing(
        nominal,
        margin,
        strict,
        Date.now(),
        throttleSpacing,
        throttle !== undefined && "window" in throttle ? everyMs(throttle.window) : MINUTE_MS,
      );
      this.spikeMs = this.pacing.spacingMs;
    }
    const concurrent = this.basePolicies.find((p) => p.kind === "concurrency");
    this.leaseTtlMs =
      concurrent?.kind === "concurrency" ? everyMs(concurrent.leaseTtl ?? 0) : undefined;
    this.hasQuota = this.basePolicies.some((p) => p.name === "quota");
    const throttle = this.basePolicies.find((p) => p.name === "throttle");
    this.throttleWindowMs =
      throttle !== undefined && "window" in throttle ? everyMs(throttle.window) : MINUTE_MS;

    const shared = {
      store: options.store,
      prefix: options.prefix ?? "keap",
      partitionBy: keapPartitions[name],
      ...(options.onStoreError === undefined ? {} : { onStoreError: options.onStoreError }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    try {
      this.limiter = createLimiter({ ...shared, policies: this.currentPolicies() });
    } catch (e) {
      throw e instanceof ConfigError ? renameIssues(e, overridden.names, this.basePolicies) : e;
    }
    // Same store, prefix and partition, so the same state: refunds reach the counted policies
    // and leave the spike slot spent.
    this.refunder = createLimiter({ ...shared, policies: this.countedPolicies() });
    if (spike?.kind === "tokenBucket" && this.pacing !== undefined) {
      this.slots = new SpikeSlots(shared, spike);
      this.sharedPacing = new SharedPacing(shared, spike.scope, this.key);
    }
    this.legacy = profile === "legacy";
  }

  /** The policies a 429 gives back (never empty: every profile has a daily or pool window). */
  private countedPolicies(): Policy[] {
    return this.basePolicies.filter((p) => COUNTED.has(p.name) && p.kind !== "concurrency");
  }

  get policies(): readonly Policy[] {
    return this.currentPolicies();
  }

  stats(): KeapClientStats {
    return {
      ...this.counts,
      byCause: { ...this.counts.byCause },
      spacingMs: this.pacing === undefined ? 0 : Math.round(this.spikeMs * 1000) / 1000,
    };
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
    this.slots?.close("the Keap client was closed");
    this.sharedPacing?.close("the Keap client was closed");
    this.gate.open();
  }

  /** Bound, so that libraries may call it detached (`ky.create({ fetch: keap.fetch })`). */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    this.call(input, init);

  private async call(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const deadline = Date.now() + this.maxWaitMs;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const url = describeUrl(input);
    const replayable = canReplay(input, init);
    // This call's identity at the probe gate.
    const caller = {};
    let last: Response | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        signal?.throwIfAborted();
        if (!(await this.gate.pass(caller, deadline, signal))) return this.timedOut(last);
        const admitted = await this.admit(deadline, signal, last);
        if (admitted instanceof Response) return this.giveUp(admitted);
        if (!this.gate.tryPass(caller)) {
          // A window went empty while this call waited: give the charge back, wait for the probe.
          await admitted.lease?.release().catch(() => {});
          await this.refund(url);
          attempt--;
          continue;
        }
        const { lease, decision } = admitted;
        const answered = admitted.cold ? this.holdUntilAnswered(0) : this.holdIfOverdue();
        let res: Response;
        let offsetMs: number;
        let sentAtMs: number;
        let sentMonotonicMs: number;
        const mark = unmarked();
        try {
          offsetMs = await this.keepSendOffset(admitted.slotAtMs, signal);
          this.holdSpikeIfLate(admitted.slotAtMs, offsetMs);
          this.counts.sent++;
          sentAtMs = this.clock.now();
          // The round trip on the monotonic clock, to a fraction of a ms: two readings of the
          // whole-ms wall clock differ from it by up to a ms either way.
          sentMonotonicMs = performance.now();
          res = await sendMarked(mark, () => this.send(input, init, lease));
        } finally {
          answered?.();
          await lease?.release().catch(() => {});
        }
        const rttMs = performance.now() - sentMonotonicMs;
        if (!admitted.cold) this.usualRtt.add(rttMs);
        const now = Date.now();
        const delayMs = this.wireDelay.delayMs(mark, sentMonotonicMs, rttMs, sentAtMs + rttMs);
        this.holdSpikeOnWire(admitted.slotAtMs, offsetMs, sentAtMs, delayMs);
        const headers = parseKeapHeadersDetailed(res.headers, { nowMs: now });
        for (const issue of headers.issues) this.emit("headerIgnored", { ...issue, url });
        const body = await throttledBody(res);
        if (body === undefined) {
          this.countForeign(decision, headers.observations);
          await this.reconcile(headers.observations, url);
          this.wentThrough(now);
          return res;
        }

        last = res;
        const classified = classify429(body, headers.observations);
        // The server did not count this request: give its charges back first, then let the
        // windows it reports decide (a window reported empty stays empty until it frees).
        await this.refund(url);
        await this.reconcile(headers.observations, url);
        const cause = this.escalate(classified.cause, now);
        this.runLength = cause === this.runCause ? this.runLength + 1 : 1;
        this.runCause = cause;
        this.counts.throttled++;
        this.counts.byCause[cause]++;
        // One slow-down per event: a request admitted before the last one was paced too fast
        // already, and its 429 says nothing new.
        if (cause === "spike" && (admitted.burst || now - this.lastBurstAtMs < BURST_SETTLE_MS)) {
          this.burstRefused(now);
        } else if (cause === "spike" && admitted.spikeEvents === this.spikeEvents) {
          this.slowDown(classified.messageRate, now);
        }
        // A window reported (or, without headers, possibly) empty: this call probes it alone.
        if (cause !== "spike") this.gate.close(caller);
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
        const delay = Math.max(this.backoff(cause, this.runLength), headers.retryAfterMs ?? 0);
        const giveUp = attempt > this.maxRetries || !replayable || Date.now() + delay > deadline;
        this.emit("throttled", { url, cause, attempt, retryInMs: giveUp ? undefined : delay });
        if (giveUp) return this.giveUp(res);
        await discard(res);
        await sleep(delay, signal);
      }
    } finally {
      this.gate.release(caller);
    }
  }

  /** A throttled answer handed back to the caller: counted, so the promise stays checkable. */
  private giveUp(res: Response): Response {
    this.counts.returned++;
    return res;
  }

  private async timedOut(last: Response | undefined): Promise<Response> {
    if (last !== undefined) return this.giveUp(last);
    throw new LimitTimeoutError("not admitted within maxWaitMs (a window is being probed)", 0);
  }

  /**
   * Repeated throttled answers escalate (KEAP.md "Settled 2026-12"): a spike 429 with pacing at
   * its slowest is treated as unknown; a run of throttle or unknown 429s longer than the throttle
   * window, with nothing going through, means the daily quota is spent although no header says so.
   */
  private escalate(cause: KeapThrottleCause, nowMs: number): KeapThrottleCause {
    this.streakSinceMs ??= nowMs;
    if (cause === "spike" && this.pacing?.atSlowest) cause = "unknown";
    if (
      (cause === "throttle" || cause === "unknown") &&
      this.hasQuota &&
      nowMs - this.streakSinceMs > this.throttleWindowMs
    ) {
      return "quota";
    }
    return cause;
  }

  /** An answer that was not throttled: the streak ends, the probe gate opens, pacing steps. */
  private wentThrough(nowMs: number): void {
    this.streakSinceMs = undefined;
    this.runCause = undefined;
    this.runLength = 0;
    this.gate.open();
    if (this.pacing === undefined) return;
    this.sharedPacing?.poll(nowMs, (ms) => this.followShared(ms));
    const others = this.pacing.others;
    const changed = this.pacing.tick(nowMs);
    if (
      !this.catchUp &&
      this.pacing.adapts &&
      nowMs >= this.catchUpFromMs &&
      nowMs - this.lastSpikeAtMs >= CATCH_UP_AFTER_MS
    ) {
      this.catchUp = true;
      this.limiter.updatePolicies(this.currentPolicies());
    }
    this.applySpacing(changed ? (this.pacing.others > others ? "others" : "recovered") : undefined);
  }

  /**
   * Requests the server counted in its throttle window that this client (and every process on its
   * store) had not: what the server reports used, less what the window this request was admitted
   * in had used. Their rate is other senders' share of the spike rate (pacing.ts). Counted as used
   * rather than remaining, so that a limit not yet learned does not look like other senders.
   */
  private countForeign(decision: Decision | undefined, observations: readonly Observation[]): void {
    if (this.pacing === undefined || decision === undefined) return;
    const server = observations.find((o) => o.policy === "throttle");
    const local = decision.policies.find((p) => p.name === "throttle");
    if (server?.remaining === undefined || local === undefined) return;
    const serverUsed = (server.limit ?? local.limit) - server.remaining;
    this.pacing.observeForeign(serverUsed - (local.limit - local.remaining));
  }

  /**
   * Waits for capacity within the call's budget. Resolves with when it was admitted, the decision
   * and the lease of a concurrency profile, or with the last 429 when the budget runs out after a
   * 429.
   */
  private async admit(
    deadline: number,
    signal: AbortSignal | undefined,
    last429: Response | undefined,
  ): Promise<Admitted | Response> {
    const timeoutMs = Math.max(0, deadline - Date.now());
    const opts = signal ? { signal, timeoutMs } : { timeoutMs };
    if (this.spikeIndex >= 0 && Date.now() - this.lastAdmitAt > COLD_AFTER_MS) {
      // After a quiet spell the bucket is full: with two slots, a cold request and the next would
      // leave back to back. Keep to one slot until traffic has flowed for a couple of seconds.
      this.catchUpFromMs = Date.now() + COLD_CATCH_UP_MS;
      if (this.catchUp) {
        this.catchUp = false;
        this.limiter.updatePolicies(this.currentPolicies());
      }
    }
    try {
      if (this.leaseTtlMs !== undefined) {
        const lease = await this.limiter.acquire(this.key, opts);
        const atMs = Date.now();
        return {
          lease,
          decision: undefined,
          atMs,
          slotAtMs: atMs,
          burst: false,
          cold: false,
          spikeEvents: this.spikeEvents,
        };
      }
      const decision = await this.limiter.wait(this.key, opts);
      const now = Date.now();
      this.sharedPacing?.poll(now, (ms) => this.followShared(ms));
      const cold = this.spikeIndex >= 0 && now - this.lastAdmitAt > COLD_AFTER_MS;
      this.lastAdmitAt = now;
      const storeSlot = this.slotTime(decision);
      this.storeClock.admitted(storeSlot, now);
      let slotAtMs = Math.min(now, this.storeClock.toLocal(storeSlot));
      if (!cold && this.lateForSlot(now - slotAtMs)) {
        // The store's answer came so late that the next slot is (nearly) due or gone: another
        // process may be sending in it right now. Sent now, this request would reach Keap close
        // to that one; it takes a fresh slot instead (the late one is lost).
        await this.slots?.take(this.key, this.spikeUnits(), SPIKE_UNITS_PER_MS, opts);
        slotAtMs = Date.now();
      }
      return {
        lease: undefined,
        decision,
        atMs: now,
        slotAtMs,
        cold,
        spikeEvents: this.spikeEvents,
        // Admitted by the second slot of a bucket of two (catching up).
        burst: (decision.policies[this.spikeIndex]?.limit ?? 1) > 1 && this.catchUpAllowed(),
      };
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

  /**
   * How late a request may reach Keap before the next slot is held back. Before a slow-down,
   * LATE_SEND_MS. After one, the room between the spacing in force and the one that drew the
   * spike 429, less a ms: far from that edge a late request leaves a gap the gateway has let
   * through before, and a hold would only cost its time; close to it, half a ms.
   */
  private lateSendMs(): number {
    if (this.edgeMs === undefined) return LATE_SEND_MS;
    return Math.max(MIN_LATE_SEND_MS, this.spikeMs - this.edgeMs - 1);
  }

  /** Past half a spacing, a hold could not reach the store before the next slot is taken. */
  private lateForSlot(lateMs: number): boolean {
    return this.slots !== undefined && !this.catchUp && lateMs >= this.spikeMs / 2;
  }

  /** True when the profile's spike bucket is one slot (catching up may make it two). */
  private catchUpAllowed(): boolean {
    const spike = this.basePolicies[this.spikeIndex];
    return spike?.kind === "tokenBucket" && spike.capacity === 1;
  }

  /** Store units one request takes from the spike bucket. */
  private spikeUnits(): number {
    return Math.max(1, Math.round(this.spikeMs * SPIKE_UNITS_PER_MS));
  }

  /**
   * When the store admitted a request, on its clock: with a bucket of one slot, it is full again
   * one spacing after the admission. Catches the time an answer from a shared store spent on its
   * way back, which the client's own clock after the answer does not.
   */
  private slotTime(decision: Decision): number {
    const spike = decision.policies[this.spikeIndex];
    if (spike === undefined || spike.limit !== 1) return Number.POSITIVE_INFINITY;
    return spike.resetAtMs - this.spikeMs;
  }

  /** A daily window with nothing left that resets after `deadline`, as the error to throw. */
  private async exhaustedDaily(deadline: number): Promise<KeapQuotaExhaustedError | undefined> {
    const d = await this.limiter.peek(this.key).catch(() => undefined);
    for (const p of d?.policies ?? []) {
      const resetAtMs = this.storeClock.toLocal(p.resetAtMs);
      if (DAILY.has(p.name) && p.remaining < 1 && resetAtMs > deadline) {
        return new KeapQuotaExhaustedError(p.name, resetAtMs);
      }
    }
    return undefined;
  }

  /**
   * A request that leaves later than it was admitted (a busy event loop, a garbage collection)
   * would reach Keap less than one spike interval before the next one: hold the next spike slot
   * back until one interval after this request actually leaves. Costs a store call only then.
   */
  private holdSpikeIfLate(slotAtMs: number, offsetMs: number): void {
    // While catching up, the schedule (not the send) sets the next slot.
    if (this.spikeIndex < 0 || this.catchUp) return;
    const now = this.clock.now();
    if (now - slotAtMs - offsetMs < this.lateSendMs()) return;
    void this.holdSpike(now - offsetMs + this.spikeMs);
  }

  /**
   * Whenever the spike bucket holds one slot (from the first request on, as a gateway that counts
   * gaps is told apart only by a 429): a request leaves a steady offset after its slot, the
   * lateness most admissions reach the client with, so that the gaps on the wire keep the spacing
   * rather than vary with the store's round trip. Timed to a fraction of a ms (`until`): a
   * timer's whole ms would vary the gaps by as much again. Resolves with the offset (ms; 0 while
   * catching up).
   */
  private async keepSendOffset(slotAtMs: number, signal: AbortSignal | undefined): Promise<number> {
    if (this.slots === undefined || this.catchUp) return 0;
    this.sendOffset.add(this.clock.now() - slotAtMs);
    const offsetMs = this.sendOffset.ms(this.spikeMs / 4);
    await this.until(slotAtMs + offsetMs, signal);
    return offsetMs;
  }

  /**
   * Resolves at `atMs` (the fine wall clock): a timer to within a ms or two of it, then turns of
   * the event loop (other work runs between them), so that a request leaves at its offset to a
   * fraction of a ms, not a timer's whole ms late. At most SPIN_TURNS turns: a clock that stands
   * still (a test's) does not hold the request.
   */
  private async until(atMs: number, signal: AbortSignal | undefined): Promise<void> {
    const aheadMs = atMs - this.clock.now();
    if (aheadMs >= 2) await sleep(Math.floor(aheadMs) - 1, signal);
    for (let turn = 0; turn < SPIN_TURNS && this.clock.now() < atMs; turn++) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * The same once the answer is in, for delay the client cannot see when it sends (inside the
   * HTTP client, the network, a stalled gateway; `delayMs`, see `WireDelay`): the next request may
   * not arrive before this one did plus one interval. A gateway that counts gaps then sees the
   * spacing whatever delayed this request, and the next request pays only the delay this one met.
   * Costs a store call only when late. `sentAtMs` is on the fine wall clock.
   */
  private holdSpikeOnWire(
    slotAtMs: number,
    offsetMs: number,
    sentAtMs: number,
    delayMs: number | undefined,
  ): void {
    // Whenever the bucket holds one slot, from the first request on: a delayed request before the
    // first spike 429 is as close to the next one on the wire as after it, and a 429 it causes
    // slows pacing by 10% at its start. While catching up, the schedule sets the slots.
    if (this.slots === undefined || delayMs === undefined || this.catchUp) return;
    // Later than one spacing, the next request has left already: hold the one after it.
    const lateMs = Math.min(sentAtMs + delayMs - slotAtMs - offsetMs, this.spikeMs);
    if (lateMs < this.lateSendMs()) return;
    void this.holdSpike(slotAtMs + lateMs + this.spikeMs);
  }

  /**
   * A cold request (see COLD_AFTER_MS), or one overdue (`holdIfOverdue`) from `afterMs` after it
   * left, holds the next spike slot until one interval after its answer, for every process on the
   * store: while it is on its way, the slot is kept one interval ahead (renewed every quarter
   * interval, so a renewal lands long before the slot comes), for at most COLD_HOLD_MAX_MS.
   * Returns the function to call once the request is answered or failed; answered before
   * `afterMs`, it holds nothing.
   */
  private holdUntilAnswered(afterMs: number): () => void {
    let startMs = Number.NaN;
    let renewal: ReturnType<typeof setInterval> | undefined;
    const renew = () => {
      const nowMs = this.clock.now();
      if (nowMs - startMs > COLD_HOLD_MAX_MS) clearInterval(renewal);
      else void this.holdSpike(nowMs + this.spikeMs);
    };
    const start = () => {
      startMs = this.clock.now();
      renewal = setInterval(renew, Math.max(1, Math.floor(this.spikeMs / 4)));
      renewal.unref?.();
      renew();
    };
    let pending: ReturnType<typeof setTimeout> | undefined;
    if (afterMs > 0) {
      pending = setTimeout(start, afterMs);
      pending.unref?.();
    } else {
      start();
    }
    return () => {
      clearTimeout(pending);
      clearInterval(renewal);
      if (!Number.isNaN(startMs)) void this.holdSpike(this.clock.now() + this.spikeMs);
    };
  }

  /**
   * A request still unanswered long after its usual round trip may be stuck on its way (a stalled
   * network or gateway), and the requests after it would reach Keap together with it: once
   * overdue, it holds the next slot as a cold request does, until it is answered. Only where that
   * happens within half a spike interval (a gateway close by, a local simulator): further away, the
   * next requests have left before a request can be told overdue, and a slow answer (the backend
   * at work after the gateway counted the request) would stall the others for nothing.
   */
  private holdIfOverdue(): (() => void) | undefined {
    if (this.slots === undefined || this.catchUp || this.usualRtt.count < OVERDUE_SEEN) {
      return undefined;
    }
    const afterMs = Math.max(OVERDUE_MIN_MS, this.usualRtt.ms() * OVERDUE_FACTOR);
    return afterMs < this.spikeMs / 2 ? this.holdUntilAnswered(afterMs) : undefined;
  }

  /**
   * No spike slot before `nextSlotAtMs`, for every process on the store (a slot already later
   * stays). Called right after an admission or an answer, when the bucket is empty or nearly so.
   * A failure only loses the hold.
   */
  private holdSpike(nextSlotAtMs: number): Promise<void> {
    const spike = this.currentPolicies()[this.spikeIndex];
    if (this.slots === undefined || spike?.kind !== "tokenBucket") return Promise.resolve();
    return this.slots.notBefore(
      this.key,
      nextSlotAtMs,
      Date.now(),
      everyMs(spike.refill.every),
      spike.refill.tokens,
      spike.capacity,
    );
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

  /**
   * Backoff before retrying a throttled answer, with full jitter on the upper half. `run` counts
   * the answers in a row with this cause (across calls: a later call does not start over).
   */
  private backoff(cause: KeapThrottleCause, run: number): number {
    const jitter = 0.5 + this.random() / 2;
    if (cause === "spike") {
      // One to two spike intervals: the slowed pacing does the rest.
      return Math.ceil(this.spikeMs * (1 + this.random()));
    }
    // Counted windows: their state was reconciled, so waiting for capacity waits for the window;
    // a short exponential backoff covers a server that did not say.
    const base = cause === "unknown" ? 1_000 : 250;
    return Math.ceil(Math.min(30_000, base * 2 ** Math.min(run - 1, 16)) * jitter);
  }

  /** A spike event (see `spikeEvents`) at `nowMs`: no catching up for a while after it. */
  private spikeEvent(nowMs: number): void {
    this.lastSpikeAtMs = nowMs;
    this.spikeEvents++;
  }

  /** Slows spike pacing after a spike 429 (docs/keap.md "Adaptive pacing"). */
  private slowDown(rate: Parameters<SpikePacing["onSpike"]>[0], nowMs: number): void {
    if (this.pacing === undefined) return;
    this.edgeMs = this.spikeMs;
    this.pacing.onSpike(rate, nowMs);
    this.sharedPacing?.publish(this.pacing.ownSpacingMs);
    this.catchUp = false;
    this.spikeEvent(nowMs);
    this.limiter.updatePolicies(this.currentPolicies());
    this.applySpacing("spike");
  }

  /**
   * A spike 429 for a request admitted while catching up (two slots): the gateway counts gaps, and
   * the remedy is one slot, not a slower pace. Tells the processes on the store (as a slow-down of
   * a microsecond) so that they stop catching up too.
   */
  private burstRefused(nowMs: number): void {
    if (this.pacing === undefined) return;
    this.edgeMs = this.spikeMs;
    this.catchUp = false;
    this.spikeEvent(nowMs);
    this.lastBurstAtMs = nowMs;
    this.limiter.updatePolicies(this.currentPolicies());
    this.sharedPacing?.publish(this.pacing.ownSpacingMs + 0.001);
  }

  /**
   * Another process on the store slowed down after a spike 429: follow it (when slower), as after
   * a spike 429 of this client's own.
   */
  private followShared(aimdMs: number): void {
    if (this.pacing === undefined) return;
    const now = Date.now();
    // Slower or not, it was a spike 429 (or a refused burst): no catching up for a while.
    this.spikeEvent(now);
    const before = this.spikeMs;
    const slower = this.pacing.adopt(aimdMs, now);
    if (slower) this.edgeMs = before;
    if (!this.catchUp && !slower) return;
    this.catchUp = false;
    this.limiter.updatePolicies(this.currentPolicies());
    this.applySpacing("spike");
  }

  /** Puts the pacing's spacing into the spike policy (the store state is kept). */
  private applySpacing(reason: KeapClientEvents["pacing"]["reason"] | undefined): void {
    if (this.pacing === undefined) return;
    const target = this.pacing.spacingMs;
    if (Math.abs(target - this.spikeMs) < 0.001) return;
    this.spikeMs = target;
    this.limiter.updatePolicies(this.currentPolicies());
    if (reason !== undefined) {
      this.emit("pacing", { spacingMs: Math.round(target * 1000) / 1000, reason });
    }
  }

  private currentPolicies(): Policy[] {
    return this.basePolicies.map((p, i) =>
      i === this.spikeIndex && p.kind === "tokenBucket"
        ? {
            ...p,
            // One slot of tolerance while catching up (see `catchUp`), unless overridden.
            capacity: this.catchUp && p.capacity === 1 ? 2 : p.capacity,
            refill: { tokens: SPIKE_UNITS_PER_MS, every: this.spikeUnits() },
          }
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

/**
 * The body of a throttled answer, or undefined for one that went through: every 429, a 5xx whose
 * body is an Apigee rate fault, a 2xx XML answer with the "threads throttled" fault.
 */
async function throttledBody(res: Response): Promise<string | undefined> {
  if (res.status === 429) return peekBody(res);
  const xml = /xml/i.test(res.headers.get("content-type") ?? "");
  const server = res.status >= 500 && res.status < 600;
  if (!server && !(xml && res.status >= 200 && res.status < 300)) return undefined;
  const body = await peekBody(res, DISGUISE_BODY);
  return isDisguisedThrottle(res.status, body) ? body : undefined;
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
async function peekBody(res: Response, limit = MAX_429_BODY): Promise<string> {
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
      if (size >= limit) {
        // Not awaited: cancelling one branch of a cloned body settles only once the other branch
        // (the response the caller gets, or discards later) is cancelled or read too.
        reader.cancel().catch(() => {});
        break;
      }
    }
    return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, limit));
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
