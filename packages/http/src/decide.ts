import {
  type Decision,
  invalidArgument,
  isSluiceError,
  type Key,
  type Lease,
  rateLimitHeaders,
} from "@sluice/core";
import { Charge } from "./charge.js";
import { clientKey } from "./client-key.js";
import type { LimiterLike, Settings } from "./options.js";

/** What the middleware does with a request. */
export type Outcome =
  /** Skipped: pass it on untouched. */
  | { readonly kind: "skip" }
  /** Admitted: set the headers, expose the decision, settle `charge` when the response is over. */
  | {
      readonly kind: "admit";
      readonly decision: Decision;
      readonly headers: Readonly<Record<string, string>> | undefined;
      readonly charge: Charge | undefined;
    }
  /** Refused: answer with the headers (they include `Retry-After`) and 429 or `onLimited`. */
  | {
      readonly kind: "limit";
      readonly decision: Decision;
      readonly headers: Record<string, string>;
    }
  /** Deciding failed: `onError`, or 503 for a store error. */
  | { readonly kind: "fail"; readonly error: unknown }
  /** The client left while the request was queued: nothing to answer. */
  | { readonly kind: "gone" };

/** What a framework tells the flow about a request. */
export interface Transport<R> {
  /** The client's address, for the default key. */
  address(req: R): string | undefined;
  /** Aborts when the client disconnects (only asked for in `wait` mode). */
  disconnectSignal(req: R): { signal: AbortSignal; done(): void } | undefined;
}

const SKIP: Outcome = Object.freeze({ kind: "skip" });
const GONE: Outcome = Object.freeze({ kind: "gone" });
const same = (outcome: Outcome): Outcome => outcome;

/** Policies lists seen, with whether they hold a concurrency policy (lists are replaced whole). */
const slotsOf = new WeakMap<object, boolean>();
/** The list asked about last, and its answer: most requests ask about the same one. */
let lastPolicies: object | undefined;
let lastSlots = false;

function hasSlots(limiter: LimiterLike): boolean {
  const policies = limiter.policies;
  if (policies === undefined) return false;
  if (policies === lastPolicies) return lastSlots;
  let slots = slotsOf.get(policies);
  if (slots === undefined) {
    slots = policies.some((p) => p.kind === "concurrency");
    slotsOf.set(policies, slots);
  }
  lastPolicies = policies;
  lastSlots = slots;
  return slots;
}

/** A store failure the middleware answers with 503 by default; anything else is a bug to surface. */
export function isStoreError(error: unknown): boolean {
  return (
    isSluiceError(error) && (error.code === "STORE_UNAVAILABLE" || error.code === "STORE_TIMEOUT")
  );
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function checkKey(key: unknown): Key {
  if (typeof key === "string" || (typeof key === "object" && key !== null)) return key as Key;
  throw invalidArgument(`key must return a string or an object of strings (got ${String(key)})`);
}

/** The framework-neutral decision flow of one request. */
export class RateLimitFlow<R> {
  /** `{ cost }` for the configured cost, made once rather than per request. */
  private readonly costOptions: { readonly cost: number };
  /** No callback to await and no queueing: the fixed limiter's takes need one promise only. */
  private readonly plain: boolean;

  constructor(
    readonly settings: Settings<R>,
    private readonly transport: Transport<R>,
  ) {
    this.costOptions = Object.freeze({ cost: settings.cost });
    this.plain =
      settings.limiter !== undefined &&
      settings.skip === undefined &&
      settings.costOf === undefined &&
      settings.maxWaitMs === undefined;
  }

  private defaultKey(req: R): Key {
    const address = this.transport.address(req);
    if (address === undefined || address === "") {
      throw invalidArgument(
        "cannot tell the client address of this request: pass a `key` function to rateLimit",
      );
    }
    return clientKey(address);
  }

  /**
   * The common case (one limiter, the client address or a synchronous key, a fixed cost, no
   * skip, no queueing) in one promise: the hook pays for the take's promise only, not for an
   * async function awaiting callbacks that are not there.
   */
  decide(req: R): Promise<Outcome> {
    return this.decideThen(req, same);
  }

  /**
   * `decide`, with `next` run on the outcome in the same promise reaction (a middleware that
   * answers from a callback pays for one promise, not two). `next` must not throw: what it throws
   * rejects the promise returned here.
   */
  decideThen<T>(req: R, next: (outcome: Outcome) => T): Promise<T> {
    const s = this.settings;
    const limiter = s.limiter;
    if (limiter === undefined || !this.plain || hasSlots(limiter)) {
      return this.decideAsync(req).then(next);
    }
    let key: Key;
    try {
      if (s.key === undefined) key = this.defaultKey(req);
      else {
        const k = s.key(req);
        if (isThenable(k)) return this.decideAsync(req, k).then(next);
        key = k === undefined ? this.defaultKey(req) : checkKey(k);
      }
    } catch (error) {
      return Promise.resolve({ kind: "fail", error } as Outcome).then(next);
    }
    return limiter.take(key, this.costOptions).then(
      (decision) => next(this.settledOutcome(decision, limiter, key, s.cost)),
      (error: unknown) => next({ kind: "fail", error }),
    );
  }

  /** `outcome` of a take without a lease, its own failure (bad headers input) as a `fail`. */
  private settledOutcome(
    decision: Decision,
    limiter: LimiterLike,
    key: Key,
    cost: number,
  ): Outcome {
    try {
      return this.outcome(decision, limiter, key, cost, null);
    } catch (error) {
      return { kind: "fail", error };
    }
  }

  /** Any request: awaits each callback the options give. `pendingKey`: a key already asked for. */
  private async decideAsync(req: R, pendingKey?: PromiseLike<Key | undefined>): Promise<Outcome> {
    const s = this.settings;
    try {
      if (s.skip !== undefined && (await s.skip(req)) === true) return SKIP;
      const limiter = s.limiter ?? (await s.pickLimiter!(req));
      let key: Key | undefined;
      if (s.key !== undefined) {
        const k = await (pendingKey ?? s.key(req));
        if (k !== undefined) key = checkKey(k);
      }
      key ??= this.defaultKey(req);
      const cost = s.costOf === undefined ? s.cost : await s.costOf(req);
      const slots = hasSlots(limiter);
      if (s.maxWaitMs !== undefined) return await this.queue(req, limiter, key, cost, slots);

      let decision: Decision;
      let lease: Lease | null = null;
      if (slots) {
        const r = await limiter.tryAcquire(key, { cost });
        decision = r.decision;
        lease = r.lease;
      } else {
        decision = await limiter.take(key, cost === s.cost ? this.costOptions : { cost });
      }
      return this.outcome(decision, limiter, key, cost, lease);
    } catch (error) {
      return { kind: "fail", error };
    }
  }

  private outcome(
    decision: Decision,
    limiter: LimiterLike,
    key: Key,
    cost: number,
    lease: Lease | null,
  ): Outcome {
    const s = this.settings;
    if (!decision.allowed) {
      return { kind: "limit", decision, headers: rateLimitHeaders(decision, s.headerOptions) };
    }
    const charge =
      lease !== null || (s.refund !== undefined && cost > 0)
        ? new Charge(limiter, key, cost, lease, s.refund)
        : undefined;
    const headers = s.writeHeaders ? rateLimitHeaders(decision, s.headerOptions) : undefined;
    return { kind: "admit", decision, headers, charge };
  }

  /** `wait` mode: queue in the limiter's FIFO for at most maxWaitMs, give up if the client leaves. */
  private async queue(
    req: R,
    limiter: LimiterLike,
    key: Key,
    cost: number,
    slots: boolean,
  ): Promise<Outcome> {
    const disconnect = this.transport.disconnectSignal(req);
    const options = {
      cost,
      timeoutMs: this.settings.maxWaitMs!,
      ...(disconnect === undefined ? {} : { signal: disconnect.signal }),
    };
    try {
      if (!slots) return this.outcome(await limiter.wait(key, options), limiter, key, cost, null);
      const lease = await limiter.acquire(key, options);
      // acquire answers with a lease only; the headers need the state it left behind.
      let seen: Decision;
      try {
        seen = await limiter.peek(key);
      } catch (error) {
        await lease.release().catch(() => {});
        throw error;
      }
      // Like tryAcquire's, its remaining counts the slots too.
      let remaining = Number.POSITIVE_INFINITY;
      for (const p of seen.policies) if (p.remaining < remaining) remaining = p.remaining;
      const decision: Decision = {
        ...seen,
        allowed: true,
        remaining,
        retryAfterMs: 0,
        blockedBy: [],
      };
      return this.outcome(decision, limiter, key, cost, lease);
    } catch (error) {
      if (disconnect?.signal.aborted) return GONE;
      if (isSluiceError(error) && error.code === "WAIT_TIMEOUT") {
        const earliest = (error as { earliestAtMs?: number }).earliestAtMs;
        const seen = await limiter.peek(key);
        const retryAfterMs =
          earliest === undefined || !Number.isFinite(earliest)
            ? Number.POSITIVE_INFINITY
            : Math.max(1, earliest - Date.now());
        const decision: Decision = {
          ...seen,
          allowed: false,
          retryAfterMs,
          blockedBy: seen.blockedBy,
        };
        return {
          kind: "limit",
          decision,
          headers: rateLimitHeaders(decision, this.settings.headerOptions),
        };
      }
      throw error;
    } finally {
      disconnect?.done();
    }
  }
}
