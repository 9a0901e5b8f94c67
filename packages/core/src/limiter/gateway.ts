import { SluiceError } from "../errors.js";
import type { Key } from "../keys.js";
import {
  DeadlinePassedError,
  readAnswer,
  type Store,
  type StoreAnswer,
  type StoreRequest,
  type StoreResult,
} from "../store/index.js";
import { Breaker } from "./breaker.js";
import type { Emitter, LimiterEvents } from "./events.js";
import { OffsetCeiling } from "./offset-ceiling.js";
import type { Settings, StoreErrorMode } from "./options.js";
import { windowBoundsAround } from "./zone-bounds.js";

/** How long the fallback store decides before the primary is probed again (at least timeoutMs). */
const FALLBACK_PROBE_MS = 1_000;

/** Normalises whatever a store threw: coded errors pass, anything else is STORE_UNAVAILABLE. */
export function toStoreError(e: unknown, store: Store): SluiceError {
  if (e instanceof SluiceError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new SluiceError(
    "STORE_UNAVAILABLE",
    `${store.capabilities.name} store failed: ${message}`,
    {
      cause: e,
    },
  );
}

/** A store that asked for time-zone bounds again right after it was sent bounds around its clock. */
function boundsMissed(store: Store, answer: StoreAnswer): SluiceError {
  return new SluiceError(
    "STORE_UNAVAILABLE",
    `${store.capabilities.name} store asked twice for time-zone window bounds (its clock ${answer.nowMs} moved by days between two calls)`,
  );
}

/**
 * Runs one store call. Local stores are called directly; remote ones race `timeoutMs`, and a
 * late answer or late failure is absorbed so it never surfaces as an unhandled rejection.
 */
function callStore(
  store: Store,
  request: StoreRequest,
  timeoutMs: number,
): StoreResult | Promise<StoreResult> {
  const out = store.execute(request);
  if (store.capabilities.local || !(out instanceof Promise)) return out;
  return new Promise<StoreResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new SluiceError(
          "STORE_TIMEOUT",
          `${store.capabilities.name} store did not answer within ${timeoutMs} ms (timeoutMs)`,
        ),
      );
    }, timeoutMs);
    out.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * Everything between the limiter and its stores: the call with its timeout, `onStoreError`, the
 * fallback store and the probing of the primary while the fallback decides, and what the answers
 * tell of the store's clock. Every answer is decoded here, once.
 */
export class StoreGateway {
  readonly store: Store;
  private readonly fallback: Store | undefined;
  readonly mode: StoreErrorMode;
  private readonly timeoutMs: number;
  /** While now < this, decisions go to the fallback store. */
  private fallbackUntil = 0;
  private fallbackActive = false;
  private probing = false;
  private readonly degraded = new WeakSet<StoreAnswer>();
  /**
   * Store clock minus client clock, from the last answer of the primary to a request with zoned
   * windows or a deadline. Measured when the answer arrives, so it errs low by the trip back:
   * deadlines built from it fall a little early on the store's clock, never late.
   */
  private clockOffsetMs = 0;
  private clockLearned = false;
  /** The same from above, to move a server's reset onto the store's clock never early. */
  private readonly resetOffset = new OffsetCeiling();
  /** Undefined: `breaker: false`. */
  private readonly breaker: Breaker | undefined;
  private readonly breakerFailures: number;
  private downSinceMs = 0;

  constructor(
    settings: Settings,
    private readonly emitter: Emitter,
  ) {
    this.store = settings.store;
    this.fallback = settings.fallback;
    this.mode = settings.mode;
    this.timeoutMs = settings.timeoutMs;
    this.breaker = settings.breaker === undefined ? undefined : new Breaker(settings.breaker);
    this.breakerFailures = settings.breaker?.failures ?? 0;
    this.updateDirect();
  }

  /**
   * The primary is in-process and in charge: it may be called synchronously, without `send`.
   * A field, not a getter, so the take path reads it without a call: recomputed wherever the
   * fallback or the breaker changes state (`updateDirect`). Only the gateway writes it.
   */
  direct = false;

  private updateDirect(): void {
    this.direct = this.store.capabilities.local && !this.fallbackActive && !this.breaker?.open;
  }

  /**
   * The deadline of a request sent now, on the store clock: when the caller stops waiting for
   * it. Undefined for in-process stores (they answer before anyone could stop waiting).
   */
  deadlineMs(waitMs = this.timeoutMs): number | undefined {
    if (this.store.capabilities.local) return undefined;
    return Math.ceil(Date.now() + this.clockOffsetMs + waitMs);
  }

  /**
   * For a deadline refusal that came before the caller's own deadline (by the client's clock):
   * learns the store clock from it and returns until when (client clock) the caller waits;
   * undefined for any other failure.
   */
  private retarget(e: unknown, request: StoreRequest): number | undefined {
    if (!(e instanceof DeadlinePassedError) || request.deadlineMs === undefined) return undefined;
    const waitedUntil = request.deadlineMs - this.clockOffsetMs;
    if (Date.now() >= waitedUntil) return undefined;
    this.clockOffsetMs = e.storeNowMs - Date.now();
    this.clockLearned = true;
    return waitedUntil;
  }

  /** The store's present as best known (the client clock corrected by the last offset seen). */
  storeNowMs(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /**
   * Calls the primary. An observed reset is read on this process's clock (a server's headers);
   * the primary keeps time by its own, so the request it gets has the resets moved onto it. The
   * fallback, like any in-process store, keeps the caller's clock and gets them as they are.
   */
  private callPrimary(
    request: StoreRequest,
    timeoutMs: number,
  ): StoreResult | Promise<StoreResult> {
    const obs = request.observations;
    if (obs === undefined || this.store.capabilities.local) {
      return callStore(this.store, request, timeoutMs);
    }
    const offsetMs = this.resetOffset.ms(this.clockOffsetMs);
    const moved = obs.map((o) =>
      o?.resetAtMs === undefined ? o : { ...o, resetAtMs: Math.max(0, o.resetAtMs + offsetMs) },
    );
    return callStore(this.store, { ...request, observations: moved }, timeoutMs);
  }

  /**
   * Before a remote primary's first answer, how far its clock is from ours is unknown: a peek
   * learns it ahead of a request whose resets must be moved onto it. A failed peek only loses that.
   */
  private async learnClock(request: StoreRequest): Promise<void> {
    const peek: StoreRequest = {
      ...request,
      op: "peek",
      cost: 1,
      observations: undefined,
      deadlineMs: this.deadlineMs(),
    };
    try {
      const sentMs = Date.now();
      this.answeredSince(peek, await callStore(this.store, peek, this.timeoutMs), sentMs);
    } catch {
      // The request itself meets the failure, if it lasts.
    }
  }

  /** Decodes an answer of the primary and learns the store clock from it. */
  answered(request: StoreRequest, r: StoreResult): StoreAnswer {
    return this.heard(request, readAnswer(r, request.policies.length));
  }

  /** `answered`, for a request sent at `sentMs`: bounds the reset offset from above too. */
  private answeredSince(request: StoreRequest, r: StoreResult, sentMs: number): StoreAnswer {
    const answer = this.answered(request, r);
    this.resetOffset.add(answer.nowMs, sentMs);
    return answer;
  }

  /** Learns the store clock from an answer of the primary. */
  heard(request: StoreRequest, answer: StoreAnswer): StoreAnswer {
    // Zoned windows and deadlines depend on the store's present being known ahead of a request.
    if (request.windowBounds !== undefined || request.deadlineMs !== undefined) {
      this.clockOffsetMs = answer.nowMs - Date.now();
      this.clockLearned = true;
    }
    const breaker = this.breaker;
    if (breaker !== undefined && !breaker.quiet && breaker.succeeded()) this.storeUp();
    return answer;
  }

  /**
   * `request` with time-zone bounds around the store clock `storeNowMs`, its deadline kept at the
   * same moment of the client's clock (`offsetMs`: the clock offset it was computed with).
   */
  private rebound(request: StoreRequest, storeNowMs: number, offsetMs: number): StoreRequest {
    return {
      ...request,
      windowBounds: windowBoundsAround(request.policies, storeNowMs),
      deadlineMs:
        request.deadlineMs === undefined
          ? undefined
          : request.deadlineMs - offsetMs + this.clockOffsetMs,
    };
  }

  /** Whether an answer came from the fallback store. */
  isDegraded(answer: StoreAnswer): boolean {
    return this.degraded.has(answer);
  }

  /**
   * Sends a request, applying `onStoreError`. Returns undefined when the decision must be made
   * without a store ("deny"/"allow"). `decision`: a Decision is expected (otherwise failures are
   * only reported); `strict`: always throw (renew cannot be faked).
   */
  async send(
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict = false,
  ): Promise<StoreAnswer | undefined> {
    const fallback = this.fallback;
    const breaker = this.breaker;
    if (breaker?.open && !strict) {
      // Fail fast: answer without the store; one probe per probeMs, which nobody waits for.
      if (breaker.probeDue(Date.now())) this.probe(request);
      return this.without(request, key, decision);
    }
    if (
      fallback !== undefined &&
      this.fallbackActive &&
      (this.probing || Date.now() < this.fallbackUntil)
    ) {
      return this.onFallback(fallback, request);
    }
    if (
      !this.clockLearned &&
      !this.store.capabilities.local &&
      request.observations?.some((o) => o?.resetAtMs !== undefined)
    ) {
      await this.learnClock(request);
    }
    const probe = fallback !== undefined && this.fallbackActive;
    if (probe) this.probing = true;
    let sent = request;
    try {
      let sentMs = Date.now();
      let out = this.callPrimary(sent, this.timeoutMs);
      let r: StoreResult;
      try {
        r = out instanceof Promise ? await out : out;
      } catch (e) {
        // Refused at once for a deadline the store's clock had passed although the caller still
        // waits: the store clock is ahead of the estimate (first call, a test clock moved on).
        // Nothing was applied: learn the clock and send it once more, within the time left.
        const waitedUntil = this.retarget(e, sent);
        if (waitedUntil === undefined) throw e;
        sent = { ...sent, deadlineMs: this.deadlineMs(waitedUntil - Date.now()) };
        sentMs = Date.now();
        out = this.callPrimary(sent, Math.max(1, waitedUntil - Date.now()));
        r = out instanceof Promise ? await out : out;
      }
      const offsetMs = this.clockOffsetMs;
      let answer = this.answeredSince(sent, r, sentMs);
      if (answer.boundsNeeded) {
        // The store's clock is outside the time-zone bounds sent (days from our estimate: a test
        // clock, a skewed host). Nothing was applied: once more, with bounds around its clock.
        sent = this.rebound(sent, answer.nowMs, offsetMs);
        out = this.callPrimary(sent, this.timeoutMs);
        answer = this.answered(sent, out instanceof Promise ? await out : out);
        if (answer.boundsNeeded) throw boundsMissed(this.store, answer);
      }
      if (probe) this.fallbackOff();
      return answer;
    } catch (e) {
      return this.failed(e, sent, key, decision, strict);
    } finally {
      if (probe) this.probing = false;
    }
  }

  /**
   * Applies `onStoreError` to a failed primary-store call. A non-retryable store error rejects
   * whatever `onStoreError` says: it is a misconfiguration nobody should learn of from a
   * degraded refusal.
   */
  async failed(
    e: unknown,
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict: boolean,
  ): Promise<StoreAnswer | undefined> {
    if (e instanceof SluiceError && e.code !== "STORE_UNAVAILABLE" && e.code !== "STORE_TIMEOUT") {
      throw e;
    }
    const error = toStoreError(e, this.store);
    if (!error.retryable) {
      this.report(request, key, error, "throw");
      throw error;
    }
    const breaker = this.breaker;
    if (breaker?.failed(Date.now(), false)) this.storeDown(error);
    return this.handle(error, request, key, decision, strict);
  }

  /** `onStoreError` for a call the open breaker kept from the store. */
  private without(
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
  ): Promise<StoreAnswer | undefined> {
    const error = new SluiceError(
      "STORE_UNAVAILABLE",
      `${this.store.capabilities.name} store is down (breaker open since ${this.downSinceMs}); not called`,
    );
    return this.handle(error, request, key, decision, false);
  }

  private handle(
    error: SluiceError,
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict: boolean,
  ): Promise<StoreAnswer | undefined> {
    const fallback = this.fallback;
    const handling =
      strict || this.mode === "throw"
        ? "throw"
        : this.mode === "fallback"
          ? "fallback"
          : decision
            ? this.mode
            : "ignored";
    this.report(request, key, error, handling);
    if (handling === "throw") return Promise.reject(error);
    if (handling === "fallback" && fallback !== undefined) {
      this.fallbackUntil = Date.now() + Math.max(FALLBACK_PROBE_MS, this.timeoutMs);
      if (!this.fallbackActive) {
        this.fallbackActive = true;
        this.updateDirect();
        this.emitFallback(true);
      }
      return this.onFallback(fallback, request);
    }
    return Promise.resolve(undefined);
  }

  private report(
    request: StoreRequest,
    key: Key | undefined,
    error: SluiceError,
    handling: LimiterEvents["storeError"]["handling"],
  ): void {
    if (this.emitter.wants("storeError")) {
      this.emitter.emit("storeError", {
        op: request.op,
        key,
        error,
        store: this.store.capabilities.name,
        handling,
      });
    }
  }

  /**
   * The open breaker's probe: a peek of the key at hand (it charges nothing, so a late answer
   * harms nobody), sent in the background; its outcome closes the breaker or waits a period.
   */
  private probe(request: StoreRequest): void {
    const peek: StoreRequest = {
      ...request,
      op: "peek",
      cost: 0,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      deadlineMs: this.deadlineMs(),
    };
    let out: StoreResult | Promise<StoreResult>;
    try {
      out = callStore(this.store, peek, this.timeoutMs);
    } catch (e) {
      out = Promise.reject(e);
    }
    Promise.resolve(out)
      .then((r) => {
        this.answered(peek, r);
        if (this.fallbackActive) this.fallbackOff();
      })
      .then(undefined, (e: unknown) => {
        const error = toStoreError(e, this.store);
        if (error.retryable) this.breaker!.failed(Date.now(), true);
        else this.breaker!.released(Date.now());
      });
  }

  private storeDown(error: SluiceError): void {
    this.updateDirect();
    this.downSinceMs = Date.now();
    if (this.emitter.wants("storeDown")) {
      this.emitter.emit("storeDown", {
        store: this.store.capabilities.name,
        failures: this.breakerFailures,
        error,
      });
    }
  }

  private storeUp(): void {
    this.updateDirect();
    if (this.emitter.wants("storeUp")) {
      this.emitter.emit("storeUp", {
        store: this.store.capabilities.name,
        downMs: Date.now() - this.downSinceMs,
      });
    }
  }

  private fallbackOff(): void {
    this.fallbackActive = false;
    this.updateDirect();
    this.emitFallback(false);
  }

  private async onFallback(fallback: Store, request: StoreRequest): Promise<StoreAnswer> {
    try {
      let out = callStore(fallback, request, this.timeoutMs);
      let answer = readAnswer(out instanceof Promise ? await out : out, request.policies.length);
      if (answer.boundsNeeded) {
        // Bounds were placed for the primary's clock; the fallback keeps its own.
        const again = {
          ...request,
          windowBounds: windowBoundsAround(request.policies, answer.nowMs),
        };
        out = callStore(fallback, again, this.timeoutMs);
        answer = readAnswer(out instanceof Promise ? await out : out, request.policies.length);
        if (answer.boundsNeeded) throw boundsMissed(fallback, answer);
      }
      this.degraded.add(answer);
      return answer;
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
