import { randomUUID } from "node:crypto";
import { invalidArgument } from "../errors.js";
import { type Key, keyIdentity, type ResolvedKey } from "../keys.js";
import { type CompiledPolicy, compilePolicies } from "../policy/compile.js";
import type { Policy } from "../policy/schema.js";
import type { StoreAnswer, StoreOp, StoreRequest, StoreResult } from "../store/index.js";
import { type Config, compileConfig, type RequestExtras, storeRequest } from "./config.js";
import { type Decision, degradedDecision, toDecision } from "./decision.js";
import { Emitter, type LimiterEventName, type LimiterEvents } from "./events.js";
import { StoreGateway } from "./gateway.js";
import { type Lease, LeaseDesk } from "./leases.js";
import { type Observation, observationsByPolicy } from "./observation.js";
import {
  type LimiterOptions,
  readOptions,
  readWaitOptions,
  type Settings,
  type TakeOptions,
  takeCost,
  type WaitOptions,
} from "./options.js";
import { type Attempt, type WaitOutcome, WaitQueues } from "./waiting.js";

/**
 * The limiter behind `createLimiter`. Users hold the `Limiter` facade, never this class; the wait
 * queues call back into `attemptTake`, `attemptAcquire` and `refund`.
 */
export class LimiterEngine {
  private config: Config;
  private settings: Settings;
  private readonly emitter = new Emitter();
  private readonly gateway: StoreGateway;
  private readonly queues: WaitQueues;
  private readonly leases: LeaseDesk;
  private closedReason: string | undefined;

  constructor(options: LimiterOptions) {
    this.settings = readOptions(options);
    this.gateway = new StoreGateway(this.settings, this.emitter);
    this.config = compileConfig(this.settings.policies, this.settings);
    this.queues = new WaitQueues(this);
    this.leases = new LeaseDesk(this.gateway, (queueId) => this.queues.wake(queueId));
  }

  get policies(): readonly CompiledPolicy[] {
    return this.config.published;
  }

  /**
   * `partitionBy` (the tenant registry's, when a tenant's profile changes it): the keys move to
   * the new partition, so the state of the old one is left behind for its TTL.
   */
  updatePolicies(
    policies: readonly Policy[],
    partitionBy: string | undefined = this.settings.partitionBy,
  ): void {
    const compiled = compilePolicies(policies);
    if (partitionBy !== this.settings.partitionBy)
      this.settings = { ...this.settings, partitionBy };
    this.config = compileConfig(compiled, this.settings);
    this.queues.wakeAll();
  }

  close(reason = "the limiter was closed"): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.queues.rejectAll(invalidArgument(reason));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
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

  // ---- operations -------------------------------------------------------------------------

  take(key: Key, options?: TakeOptions): Promise<Decision> {
    try {
      return this.decide("take", key, options === undefined ? 1 : takeCost(options));
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
    const { decision } = await this.enqueue(key, options, false);
    return decision;
  }

  async tryAcquire(
    key: Key,
    options?: TakeOptions,
  ): Promise<{ decision: Decision; lease: Lease | null }> {
    const { decision, lease } = await this.attemptAcquire(
      key,
      options === undefined ? 1 : takeCost(options),
    );
    return { decision, lease };
  }

  async acquire(key: Key, options?: WaitOptions): Promise<Lease> {
    const { lease } = await this.enqueue(key, options, true);
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
    const cost = options === undefined ? 1 : takeCost(options);
    const config = this.open();
    const resolved = config.plan.resolve(key);
    if (cost === 0) return;
    await this.send(config, "refund", resolved, cost, key);
    // Capacity came back: a waiter asleep on this key tries now instead of at its planned time.
    this.queues.wake(keyIdentity(resolved));
  }

  async reconcile(key: Key, observations: Observation | readonly Observation[]): Promise<void> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const byPolicy = observationsByPolicy(
      observations,
      config.index,
      config.policies,
      (observation, reason) => {
        if (this.emitter.wants("observationIgnored"))
          this.emitter.emit("observationIgnored", { key, observation, reason });
      },
    );
    if (byPolicy === undefined) return;
    await this.send(config, "reconcile", resolved, 0, key, { observations: byPolicy });
  }

  async reset(key: Key): Promise<void> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    await this.send(config, "reset", resolved, 0, key);
    this.queues.wake(keyIdentity(resolved));
  }

  // ---- what the wait queues drive ---------------------------------------------------------

  /** One take attempt for a waiter (re-resolves the key: policies may have been updated). */
  async attemptTake(key: Key, cost: number): Promise<Attempt> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const request = this.request(config, "take", resolved, cost);
    const answer = await this.gateway.send(request, key, true);
    const decision = this.decisionOf(config, answer, false);
    this.emitDecision("take", key, cost, decision);
    return { decision, lease: null, answer, policies: config.policies };
  }

  async attemptAcquire(key: Key, cost: number): Promise<Attempt> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    const leaseId = randomUUID();
    const request = this.request(config, "take", resolved, cost, { acquire: true, leaseId });
    const answer = await this.gateway.send(request, key, true);
    const decision = this.decisionOf(config, answer, true);
    this.emitDecision("tryAcquire", key, cost, decision);
    const lease = decision.allowed ? this.leases.grant(leaseId, config, resolved, answer) : null;
    return { decision, lease, answer, policies: config.policies };
  }

  // ---- plumbing ---------------------------------------------------------------------------

  private open(): Config {
    if (this.closedReason !== undefined) throw invalidArgument(this.closedReason);
    return this.config;
  }

  /** Queues a wait or an acquire behind the key's earlier waiters. */
  private async enqueue(
    key: Key,
    options: WaitOptions | undefined,
    acquire: boolean,
  ): Promise<WaitOutcome> {
    const { cost, timeoutMs } = readWaitOptions(options);
    const config = this.open();
    const resolved = config.plan.resolve(key);
    return this.queues.enqueue({
      key,
      queueId: keyIdentity(resolved),
      cost,
      acquire,
      timeoutMs,
      signal: options?.signal,
      neverFits: cost > config.minRateLimit && (await this.exceedsLimitInForce(key, cost)),
    });
  }

  /** A cost above a configured limit may still fit a larger learned limit: ask the store. */
  private async exceedsLimitInForce(key: Key, cost: number): Promise<boolean> {
    const { policies } = await this.peek(key);
    return policies.some((p) => p.kind !== "concurrency" && cost > p.limit);
  }

  /**
   * The hot path. An in-process store in charge answers synchronously, and the decision comes
   * back in one resolved promise; anything else (remote stores, an active fallback) goes through
   * the gateway.
   */
  private decide(op: "take" | "peek", key: Key, cost: number): Promise<Decision> {
    const config = this.open();
    const resolved = config.plan.resolve(key);
    if (!this.gateway.direct) return this.decideRemote(config, op, key, resolved, cost);
    return this.gateway.store.decideNow !== undefined
      ? this.decideNow(config, op, key, resolved, cost)
      : this.decideLocal(config, op, key, resolved, cost);
  }

  /**
   * Through the store's `decideNow`: no request object per call (the configuration's one is
   * refilled), the state found through the cached key's handles, the answer read in place.
   */
  private decideNow(
    config: Config,
    op: "take" | "peek",
    key: Key,
    resolved: ResolvedKey,
    cost: number,
  ): Promise<Decision> {
    const gateway = this.gateway;
    const scratch = config.scratch;
    scratch.op = op;
    scratch.keys = resolved.keys;
    scratch.partition = resolved.partition;
    scratch.cost = cost;
    scratch.windowBounds = config.zones?.at(gateway.storeNowMs());
    let answer: StoreAnswer;
    try {
      answer = gateway.store.decideNow!(scratch, resolved.handles);
    } catch (e) {
      // The failure path may hand the request on (a fallback store): give it its own.
      return gateway
        .failed(e, { ...scratch }, key, true, false)
        .then((a) => this.decided(config, op, key, cost, a));
    }
    gateway.heard(scratch, answer);
    // Asked for bounds around its clock, now learned: the general path sends them.
    if (answer.boundsNeeded) return this.decideRemote(config, op, key, resolved, cost);
    // Read before the store's next call: the store reuses its answer.
    const decision = toDecision(config.policies, answer, false, false);
    this.emitDecision(op, key, cost, decision);
    return Promise.resolve(decision);
  }

  /** Through `execute` of a store that answers without I/O, usually at once. */
  private decideLocal(
    config: Config,
    op: "take" | "peek",
    key: Key,
    resolved: ResolvedKey,
    cost: number,
  ): Promise<Decision> {
    const gateway = this.gateway;
    const request = this.request(config, op, resolved, cost);
    let out: StoreResult | Promise<StoreResult>;
    try {
      out = gateway.store.execute(request);
    } catch (e) {
      out = Promise.reject(e);
    }
    if (!(out instanceof Promise)) {
      return this.decidedLocally(config, op, key, resolved, cost, gateway.answered(request, out));
    }
    // A local store may still answer with a promise: use that answer; calling the store again
    // through the gateway would charge the take twice.
    return out.then(
      (r) => this.decidedLocally(config, op, key, resolved, cost, gateway.answered(request, r)),
      (e: unknown) =>
        gateway
          .failed(e, request, key, true, false)
          .then((answer) => this.decided(config, op, key, cost, answer)),
    );
  }

  private decidedLocally(
    config: Config,
    op: "take" | "peek",
    key: Key,
    resolved: ResolvedKey,
    cost: number,
    answer: StoreAnswer,
  ): Promise<Decision> {
    // Asked for bounds around its clock, now learned: the general path sends them.
    if (answer.boundsNeeded) return this.decideRemote(config, op, key, resolved, cost);
    return Promise.resolve(this.decided(config, op, key, cost, answer));
  }

  /** Through the gateway: remote stores, an active fallback, a store that asked for bounds. */
  private decideRemote(
    config: Config,
    op: "take" | "peek",
    key: Key,
    resolved: ResolvedKey,
    cost: number,
  ): Promise<Decision> {
    return this.gateway
      .send(this.request(config, op, resolved, cost), key, true)
      .then((answer) => this.decided(config, op, key, cost, answer));
  }

  private decided(
    config: Config,
    op: "take" | "peek",
    key: Key,
    cost: number,
    answer: StoreAnswer | undefined,
  ): Decision {
    const decision = this.decisionOf(config, answer, false);
    this.emitDecision(op, key, cost, decision);
    return decision;
  }

  private decisionOf(config: Config, answer: StoreAnswer | undefined, slots: boolean): Decision {
    if (answer === undefined)
      return degradedDecision(config.policies, this.gateway.mode === "allow", slots, Date.now());
    return toDecision(config.policies, answer, slots, this.gateway.isDegraded(answer));
  }

  private emitDecision(
    op: "take" | "peek" | "tryAcquire",
    key: Key,
    cost: number,
    decision: Decision,
  ): void {
    if (this.emitter.wants("decision")) this.emitter.emit("decision", { op, key, cost, decision });
  }

  private request(
    config: Config,
    op: StoreOp,
    resolved: ResolvedKey,
    cost: number,
    extras?: RequestExtras,
  ): StoreRequest {
    const storeNowMs = config.zones === undefined ? 0 : this.gateway.storeNowMs();
    return storeRequest(config, op, resolved, cost, storeNowMs, extras, this.gateway.deadlineMs());
  }

  private async send(
    config: Config,
    op: StoreOp,
    resolved: ResolvedKey,
    cost: number,
    key: Key,
    extras?: RequestExtras,
  ): Promise<void> {
    await this.gateway.send(this.request(config, op, resolved, cost, extras), key, false);
  }
}
