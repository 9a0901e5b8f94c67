import { randomUUID } from "node:crypto";
import { type Decision, degradedDecision, type PolicyState, toDecision } from "./decision.js";
import { ConfigError, type ConfigIssue, invalidArgument, SluiceError } from "./errors.js";
import { Emitter, type LimiterEventName, type LimiterEvents } from "./events.js";
import { type Key, KeyPlan, keyIdentity, type ResolvedKey } from "./keys.js";
import { HeldLease, type Lease, type LeaseOwner } from "./lease.js";
import { type CompiledPolicy, compilePolicies, configuredLimit } from "./policy/compile.js";
import type { Policy } from "./policy/schema.js";
import type { Store, StoreObservation, StoreOp, StoreRequest, StoreResult } from "./store.js";
import { callStore, isStoreFailure, toStoreError } from "./store-call.js";
import { zoneWindowBounds } from "./time-zone.js";
import { WaitQueues } from "./wait-queue.js";

export type { Decision, PolicyState } from "./decision.js";
export type { LimiterEventName, LimiterEvents } from "./events.js";
export type { Lease } from "./lease.js";

export type OnStoreError = "deny" | "allow" | "throw" | { fallback: Store };

export interface LimiterOptions {
  store: Store;
  policies: readonly Policy[];
  /** Namespace in the store (default "sluice"). */
  prefix?: string;
  /** Key field that qualifies every policy's state; required by co-locating stores for multi-field keys. */
  partitionBy?: string;
  /** What a failed or slow store call yields (default "deny"). */
  onStoreError?: OnStoreError;
  /** Longest wait for one store call (default 1000 ms). */
  timeoutMs?: number;
  /** How long a limit learned through reconcile is kept (default 24 h). */
  learnedLimitTtlMs?: number;
}

export interface TakeOptions {
  cost?: number;
}
export interface WaitOptions {
  cost?: number;
  signal?: AbortSignal;
  /** Longest wait for admission (default Infinity). */
  timeoutMs?: number;
}
export interface Observation {
  policy: string;
  remaining?: number;
  limit?: number;
  resetAtMs?: number;
}

/** A limiter configuration: compiled once, swapped whole by `updatePolicies`. */
interface Config {
  readonly policies: readonly CompiledPolicy[];
  readonly plan: KeyPlan;
  readonly index: ReadonlyMap<string, number>;
  readonly hasSlots: boolean;
  readonly minRateLimit: number;
  /** Indexes of calendar fixed windows in a time zone. */
  readonly zoned: readonly number[];
  bounds: (readonly number[] | undefined)[] | undefined;
  boundsValidFrom: number;
  boundsValidTo: number;
}

interface LeaseBasis {
  readonly config: Config;
  readonly resolved: ResolvedKey;
  readonly queueId: string;
}

const DAY_MS = 86_400_000;
const FALLBACK_PROBE_MS = 1_000;

function checkCost(cost: unknown, field = "cost"): number {
  if (cost === undefined) return 1;
  if (typeof cost !== "number" || !Number.isSafeInteger(cost) || cost < 0) {
    throw invalidArgument(`${field} must be a non-negative integer (got ${String(cost)})`);
  }
  return cost;
}

function checkTimeout(value: unknown, field: string): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw invalidArgument(
      `${field} must be a number of milliseconds >= 0 or Infinity (got ${String(value)})`,
    );
  }
  return value;
}

function isStore(value: unknown): value is Store {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Store).execute === "function" &&
    typeof (value as Store).capabilities === "object"
  );
}

export class Limiter implements LeaseOwner {
  private config: Config;
  private readonly store: Store;
  private readonly fallback: Store | undefined;
  private readonly mode: "deny" | "allow" | "throw" | "fallback";
  private readonly prefix: string;
  private readonly partitionBy: string | undefined;
  private readonly timeoutMs: number;
  private readonly learnedLimitTtlMs: number;
  private readonly emitter = new Emitter();
  private readonly queues: WaitQueues;
  private closedReason: string | undefined;
  /** While now < this, decisions go to the fallback store. */
  private fallbackUntil = 0;
  private fallbackActive = false;
  private probing = false;
  private readonly degraded = new WeakSet<StoreResult>();
  /** Store clock minus client clock, from the last answer to a request with zoned windows. */
  private storeClockOffsetMs = 0;

  constructor(options: LimiterOptions) {
    const issues: ConfigIssue[] = [];
    if (typeof options !== "object" || options === null) {
      throw new ConfigError([{ path: "", message: "createLimiter needs an options object" }]);
    }
    const {
      store,
      policies,
      prefix = "sluice",
      partitionBy,
      onStoreError = "deny",
      timeoutMs = 1_000,
      learnedLimitTtlMs = DAY_MS,
    } = options;
    if (!isStore(store))
      issues.push({ path: "store", message: "store must be a Store (e.g. memoryStore())" });
    if (typeof prefix !== "string" || prefix === "") {
      issues.push({ path: "prefix", message: "prefix must be a non-empty string" });
    }
    if (partitionBy !== undefined && (typeof partitionBy !== "string" || partitionBy === "")) {
      issues.push({
        path: "partitionBy",
        message: "partitionBy must be a non-empty key field name",
      });
    }
    let fallback: Store | undefined;
    let mode: Limiter["mode"] = "deny";
    if (onStoreError === "deny" || onStoreError === "allow" || onStoreError === "throw")
      mode = onStoreError;
    else if (
      typeof onStoreError === "object" &&
      onStoreError !== null &&
      isStore(onStoreError.fallback)
    ) {
      mode = "fallback";
      fallback = onStoreError.fallback;
    } else {
      issues.push({
        path: "onStoreError",
        message: 'onStoreError must be "deny", "allow", "throw" or { fallback: Store }',
      });
    }
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      issues.push({
        path: "timeoutMs",
        message: "timeoutMs must be a positive number of milliseconds",
      });
    }
    if (!Number.isSafeInteger(learnedLimitTtlMs) || learnedLimitTtlMs <= 0) {
      issues.push({
        path: "learnedLimitTtlMs",
        message: "learnedLimitTtlMs must be a positive integer of milliseconds",
      });
    }
    let compiled: readonly CompiledPolicy[] = [];
    try {
      compiled = compilePolicies(policies);
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
    if (issues.length > 0) throw new ConfigError(issues);
    this.store = store;
    this.fallback = fallback;
    this.mode = mode;
    this.prefix = prefix;
    this.partitionBy = partitionBy;
    this.timeoutMs = timeoutMs;
    this.learnedLimitTtlMs = learnedLimitTtlMs;
    this.config = this.configure(compiled);
    this.queues = new WaitQueues(this);
  }

  private configure(policies: readonly CompiledPolicy[]): Config {
    const zoned: number[] = [];
    let minRateLimit = Number.POSITIVE_INFINITY;
    policies.forEach((p, i) => {
      if (p.kind === "fixedWindow" && p.timeZone !== undefined && p.align === "calendar")
        zoned.push(i);
      if (p.kind !== "concurrency") minRateLimit = Math.min(minRateLimit, configuredLimit(p));
    });
    return {
      policies,
      plan: new KeyPlan(
        this.prefix,
        policies,
        this.partitionBy,
        this.store.capabilities.requiresPartition,
      ),
      index: new Map(policies.map((p, i) => [p.name, i])),
      hasSlots: policies.some((p) => p.kind === "concurrency"),
      minRateLimit,
      zoned,
      bounds: undefined,
      boundsValidFrom: 0,
      boundsValidTo: -1,
    };
  }

  /** The compiled policies in force. */
  get policies(): readonly CompiledPolicy[] {
    return this.config.policies;
  }

  /**
   * Replaces the policies (hot reload). State is keyed by policy name, so a policy that keeps its
   * name keeps what was consumed; waits in progress continue under the new policies; leases
   * already held keep their slots until released or expired.
   */
  updatePolicies(policies: readonly Policy[]): void {
    this.config = this.configure(compilePolicies(policies));
    this.queues.wakeAll();
  }

  /** Stops the limiter: pending waits reject and new calls throw INVALID_ARGUMENT. */
  close(reason = "the limiter was closed"): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.queues.rejectAll(invalidArgument(reason));
  }

  on<E extends LimiterEventName>(
    event: E,
    listener: (payload: LimiterEvents[E]) => void,
  ): () => void {
    return this.emitter.on(event, listener);
  }

  off<E extends LimiterEventName>(event: E, listener: (payload: LimiterEvents[E]) => void): void {
    this.emitter.off(event, listener);
  }

  // ---- public operations ----------------------------------------------------------------

  take(key: Key, options?: TakeOptions): Promise<Decision> {
    try {
      return this.decide("take", key, checkCost(options?.cost));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  peek(key: Key): Promise<Decision> {
    try {
      return this.decide("peek", key, 0);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async wait(key: Key, options?: WaitOptions): Promise<Decision> {
    const cost = checkCost(options?.cost);
    const timeoutMs = checkTimeout(options?.timeoutMs, "timeoutMs");
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const { decision } = await this.queues.enqueue({
      key,
      queueId: keyIdentity(resolved),
      cost,
      acquire: false,
      timeoutMs,
      signal: options?.signal,
      neverFits: cost > config.minRateLimit && (await this.exceedsLimitInForce(key, cost)),
    });
    return decision;
  }

  async tryAcquire(
    key: Key,
    options?: TakeOptions,
  ): Promise<{ decision: Decision; lease: Lease | null }> {
    const cost = checkCost(options?.cost);
    return this.attemptAcquire(key, cost);
  }

  async acquire(key: Key, options?: WaitOptions): Promise<Lease> {
    const cost = checkCost(options?.cost);
    const timeoutMs = checkTimeout(options?.timeoutMs, "timeoutMs");
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const { lease } = await this.queues.enqueue({
      key,
      queueId: keyIdentity(resolved),
      cost,
      acquire: true,
      timeoutMs,
      signal: options?.signal,
      neverFits: cost > config.minRateLimit && (await this.exceedsLimitInForce(key, cost)),
    });
    return lease!;
  }

  async run<T>(key: Key, fn: (lease: Lease) => T | Promise<T>, options?: WaitOptions): Promise<T> {
    if (typeof fn !== "function")
      throw invalidArgument("run needs a function as its second argument");
    const lease = await this.acquire(key, options);
    try {
      return await fn(lease);
    } finally {
      await lease.release();
    }
  }

  async refund(key: Key, options?: TakeOptions): Promise<void> {
    const cost = checkCost(options?.cost);
    const config = this.open();
    const resolved = config.plan.resolve(key);
    if (cost === 0) return;
    await this.send(this.request(config, "refund", resolved, cost), key, false);
  }

  async reconcile(key: Key, observations: Observation | readonly Observation[]): Promise<void> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const list: readonly unknown[] = Array.isArray(observations) ? observations : [observations];
    let byPolicy: (StoreObservation | undefined)[] | undefined;
    list.forEach((raw, i) => {
      const field = Array.isArray(observations) ? `observations[${i}]` : "observation";
      if (typeof raw !== "object" || raw === null)
        throw invalidArgument(`${field} must be an object`);
      const o = raw as Observation;
      if (typeof o.policy !== "string")
        throw invalidArgument(`${field}.policy must be a policy name`);
      const remaining = observedNumber(o.remaining, `${field}.remaining`, 0);
      const limit = observedNumber(o.limit, `${field}.limit`, 1);
      const resetAtMs = observedNumber(o.resetAtMs, `${field}.resetAtMs`, 0);
      const idx = config.index.get(o.policy);
      if (idx === undefined) {
        if (this.emitter.wants("observationIgnored")) {
          this.emitter.emit("observationIgnored", {
            key,
            observation: o,
            reason: `the limiter has no policy named "${o.policy}"`,
          });
        }
        return;
      }
      byPolicy ??= new Array(config.policies.length).fill(undefined);
      const prev = byPolicy[idx];
      byPolicy[idx] = {
        remaining: remaining ?? prev?.remaining,
        limit: limit ?? prev?.limit,
        resetAtMs: resetAtMs ?? prev?.resetAtMs,
      };
    });
    if (byPolicy === undefined) return;
    const request = { ...this.request(config, "reconcile", resolved, 0), observations: byPolicy };
    await this.send(request, key, false);
  }

  async reset(key: Key): Promise<void> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    await this.send(this.request(config, "reset", resolved, 0), key, false);
  }

  // ---- internals used by wait queues and leases -----------------------------------------

  /** A cost above a configured limit may still fit a larger learned limit: ask the store. */
  private async exceedsLimitInForce(key: Key, cost: number): Promise<boolean> {
    const { policies } = await this.peek(key);
    return policies.some((p) => p.kind !== "concurrency" && cost > p.limit);
  }

  /** One take attempt for a waiter (re-resolves the key: policies may have been updated). */
  async attemptTake(
    key: Key,
    cost: number,
  ): Promise<{ decision: Decision; result: StoreResult | undefined; config: Config }> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const r = await this.send(this.request(config, "take", resolved, cost), key, true);
    const decision = this.decisionOf(config, r, false);
    this.emitDecision("take", key, cost, decision);
    return { decision, result: r, config };
  }

  async attemptAcquire(
    key: Key,
    cost: number,
  ): Promise<{
    decision: Decision;
    lease: HeldLease | null;
    result?: StoreResult | undefined;
    config?: Config;
  }> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const leaseId = randomUUID();
    const request: StoreRequest = {
      ...this.request(config, "take", resolved, cost),
      acquire: true,
      leaseId,
    };
    const r = await this.send(request, key, true);
    const decision = this.decisionOf(config, r, true);
    this.emitDecision("tryAcquire", key, cost, decision);
    if (!decision.allowed) return { decision, lease: null, result: r, config };
    const basis: LeaseBasis = { config, resolved, queueId: keyIdentity(resolved) };
    let expiresAtMs = Number.POSITIVE_INFINITY;
    if (r !== undefined && config.hasSlots && r[2]! > 0) expiresAtMs = r[2]!;
    else if (r === undefined && config.hasSlots) {
      // Admitted without a store ("allow"): nothing holds the slot, it lapses on its own.
      const ttl = Math.min(
        ...config.policies.map((p) =>
          p.kind === "concurrency" ? p.leaseTtlMs : Number.POSITIVE_INFINITY,
        ),
      );
      expiresAtMs = Date.now() + ttl;
    }
    const lease = new HeldLease(leaseId, expiresAtMs, r === undefined ? undefined : basis, this);
    return { decision, lease, result: r, config };
  }

  async releaseLease(lease: HeldLease): Promise<void> {
    const basis = lease.basis as LeaseBasis | undefined;
    if (basis === undefined || !basis.config.hasSlots) return;
    const request: StoreRequest = {
      ...this.request(basis.config, "release", basis.resolved, 0),
      leaseId: lease.id,
    };
    try {
      await this.send(request, undefined, false);
    } finally {
      this.queues.wake(basis.queueId);
    }
  }

  async renewLease(lease: HeldLease, ttlMs: number | undefined): Promise<number> {
    const basis = lease.basis as LeaseBasis | undefined;
    if (basis === undefined) {
      throw new SluiceError(
        "LEASE_EXPIRED",
        `lease ${lease.id} was granted without a store and cannot be renewed`,
      );
    }
    if (!basis.config.hasSlots) return Number.POSITIVE_INFINITY;
    const request: StoreRequest = {
      ...this.request(basis.config, "renew", basis.resolved, 0),
      leaseId: lease.id,
      leaseTtlMs: ttlMs,
    };
    const r = await this.send(request, undefined, false, true);
    if (r === undefined || r[0] !== 1) {
      throw new SluiceError("LEASE_EXPIRED", `lease ${lease.id} has expired or was released`);
    }
    return r[2]!;
  }

  /** The limiter's rejection reason once closed. */
  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  // ---- plumbing ---------------------------------------------------------------------------

  private open(): Config {
    if (this.closedReason !== undefined) throw invalidArgument(this.closedReason);
    return this.config;
  }

  /**
   * The hot path. A local store that answers synchronously is called directly and the decision
   * comes back in one resolved promise; anything else (remote stores, failures, an active
   * fallback) takes the general path through `send`.
   */
  private decide(op: "take" | "peek", key: Key, cost: number): Promise<Decision> {
    const config = this.open();
    const request = this.request(config, op, config.plan.resolve(key), cost);
    if (this.store.capabilities.local && !this.fallbackActive) {
      let r: StoreResult | Promise<StoreResult>;
      try {
        r = this.store.execute(request);
      } catch (e) {
        r = Promise.reject(e);
      }
      if (!(r instanceof Promise)) {
        if (request.windowBounds !== undefined) this.storeClockOffsetMs = r[1]! - Date.now();
        const decision = toDecision(config.policies, r, false, false);
        if (this.emitter.wants("decision"))
          this.emitter.emit("decision", { op, key, cost, decision });
        return Promise.resolve(decision);
      }
      // A local store may still answer with a promise: use that answer; calling the store again
      // through `send` would charge the take twice.
      return r
        .then(
          (answer) => {
            if (request.windowBounds !== undefined)
              this.storeClockOffsetMs = answer[1]! - Date.now();
            return answer;
          },
          (e: unknown) => this.failed(e, request, key, true, false),
        )
        .then((f) => {
          const decision = this.decisionOf(config, f, false);
          this.emitDecision(op, key, cost, decision);
          return decision;
        });
    }
    return this.send(request, key, true).then((r) => {
      const decision = this.decisionOf(config, r, false);
      this.emitDecision(op, key, cost, decision);
      return decision;
    });
  }

  private decisionOf(config: Config, r: StoreResult | undefined, slots: boolean): Decision {
    if (r === undefined)
      return degradedDecision(config.policies, this.mode === "allow", slots, Date.now());
    return toDecision(config.policies, r, slots, this.degraded.has(r));
  }

  private emitDecision(
    op: "take" | "peek" | "tryAcquire",
    key: Key,
    cost: number,
    decision: Decision,
  ): void {
    if (this.emitter.wants("decision")) this.emitter.emit("decision", { op, key, cost, decision });
  }

  private request(config: Config, op: StoreOp, resolved: ResolvedKey, cost: number): StoreRequest {
    return {
      op,
      policies: config.policies,
      keys: resolved.keys,
      partition: resolved.partition,
      cost,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: this.learnedLimitTtlMs,
      windowBounds: config.zoned.length === 0 ? undefined : this.windowBounds(config),
    };
  }

  /**
   * Time-zone window starts around the store's present (the client clock corrected by the offset
   * seen in the last answer, so a skewed client still sends the right days); recomputed only as
   * the present moves on.
   */
  private windowBounds(config: Config): (readonly number[] | undefined)[] {
    const now = Date.now() + this.storeClockOffsetMs;
    if (config.bounds === undefined || now < config.boundsValidFrom || now > config.boundsValidTo) {
      const bounds = new Array<readonly number[] | undefined>(config.policies.length).fill(
        undefined,
      );
      let from = Number.NEGATIVE_INFINITY;
      let to = Number.POSITIVE_INFINITY;
      for (const i of config.zoned) {
        const p = config.policies[i]!;
        if (p.kind !== "fixedWindow" || p.timeZone === undefined) continue;
        const b = zoneWindowBounds(p.timeZone, p.windowMs / DAY_MS, now);
        bounds[i] = b;
        // Recompute once the present leaves the middle of the list.
        from = Math.max(from, b[2]!);
        to = Math.min(to, b[b.length - 3]!);
      }
      config.bounds = bounds;
      config.boundsValidFrom = from;
      config.boundsValidTo = to;
    }
    return config.bounds;
  }

  /**
   * Sends a request, applying `onStoreError`. Returns undefined when the decision must be made
   * without a store ("deny"/"allow"). `decision`: a Decision is expected (otherwise failures are
   * only reported); `strict`: always throw (renew cannot be faked).
   */
  private async send(
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict = false,
  ): Promise<StoreResult | undefined> {
    const fallback = this.fallback;
    if (
      fallback !== undefined &&
      this.fallbackActive &&
      (this.probing || Date.now() < this.fallbackUntil)
    ) {
      return this.onFallback(fallback, request);
    }
    const probe = fallback !== undefined && this.fallbackActive;
    if (probe) this.probing = true;
    try {
      const out = callStore(this.store, request, this.timeoutMs);
      const r = out instanceof Promise ? await out : out;
      if (request.windowBounds !== undefined) this.storeClockOffsetMs = r[1]! - Date.now();
      if (probe) {
        this.fallbackActive = false;
        this.emitFallback(false);
      }
      return r;
    } catch (e) {
      return this.failed(e, request, key, decision, strict);
    } finally {
      if (probe) this.probing = false;
    }
  }

  /** Applies `onStoreError` to a failed primary-store call. */
  private async failed(
    e: unknown,
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict: boolean,
  ): Promise<StoreResult | undefined> {
    const fallback = this.fallback;
    if (!isStoreFailure(e) && e instanceof SluiceError) throw e;
    const error = toStoreError(e, this.store);
    const handling =
      strict || this.mode === "throw"
        ? "throw"
        : this.mode === "fallback"
          ? "fallback"
          : decision
            ? this.mode
            : "ignored";
    if (this.emitter.wants("storeError")) {
      this.emitter.emit("storeError", {
        op: request.op,
        key,
        error,
        store: this.store.capabilities.name,
        handling,
      });
    }
    if (handling === "throw") throw error;
    if (handling === "fallback" && fallback !== undefined) {
      this.fallbackUntil = Date.now() + Math.max(FALLBACK_PROBE_MS, this.timeoutMs);
      if (!this.fallbackActive) {
        this.fallbackActive = true;
        this.emitFallback(true);
      }
      return this.onFallback(fallback, request);
    }
    return undefined;
  }

  private async onFallback(fallback: Store, request: StoreRequest): Promise<StoreResult> {
    try {
      const out = callStore(fallback, request, this.timeoutMs);
      const r = out instanceof Promise ? await out : out;
      this.degraded.add(r);
      return r;
    } catch (e) {
      throw toStoreError(e, fallback);
    }
  }

  private emitFallback(active: boolean): void {
    if (this.emitter.wants("fallback")) {
      this.emitter.emit("fallback", {
        active,
        store: (this.fallback ?? this.store).capabilities.name,
      });
    }
  }
}

function observedNumber(value: unknown, field: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw invalidArgument(`${field} must be a finite number >= ${min} (got ${String(value)})`);
  }
  return Math.floor(value);
}

/** Creates a limiter; validates the policies synchronously (ConfigError paths start at `policies[i]`). */
export function createLimiter(options: LimiterOptions): Limiter {
  return new Limiter(options);
}

export type { PolicyState as LimiterPolicyState };
