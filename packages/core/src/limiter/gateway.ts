import { SluiceError } from "../errors.js";
import type { Key } from "../keys.js";
import {
  readAnswer,
  type Store,
  type StoreAnswer,
  type StoreRequest,
  type StoreResult,
} from "../store/index.js";
import type { Emitter } from "./events.js";
import type { Settings, StoreErrorMode } from "./options.js";

/** How long the fallback store decides before the primary is probed again (at least timeoutMs). */
const FALLBACK_PROBE_MS = 1_000;

/** Errors that go through `onStoreError`; anything else a store throws is the caller's bug. */
export function isStoreFailure(e: unknown): e is SluiceError {
  return e instanceof SluiceError && (e.code === "STORE_UNAVAILABLE" || e.code === "STORE_TIMEOUT");
}

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
  /** Store clock minus client clock, from the last answer to a request with zoned windows. */
  private clockOffsetMs = 0;

  constructor(
    settings: Settings,
    private readonly emitter: Emitter,
  ) {
    this.store = settings.store;
    this.fallback = settings.fallback;
    this.mode = settings.mode;
    this.timeoutMs = settings.timeoutMs;
  }

  /** The primary is in-process and in charge: it may be called synchronously, without `send`. */
  get direct(): boolean {
    return this.store.capabilities.local && !this.fallbackActive;
  }

  /** The store's present as best known (the client clock corrected by the last offset seen). */
  storeNowMs(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Decodes an answer of the primary and learns the store clock from it. */
  answered(request: StoreRequest, r: StoreResult): StoreAnswer {
    return this.heard(request, readAnswer(r, request.policies.length));
  }

  /** Learns the store clock from an answer of the primary. */
  heard(request: StoreRequest, answer: StoreAnswer): StoreAnswer {
    // Only zoned windows depend on the store's present being known ahead of a request.
    if (request.windowBounds !== undefined) this.clockOffsetMs = answer.nowMs - Date.now();
    return answer;
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
      const answer = this.answered(request, out instanceof Promise ? await out : out);
      if (probe) {
        this.fallbackActive = false;
        this.emitFallback(false);
      }
      return answer;
    } catch (e) {
      return this.failed(e, request, key, decision, strict);
    } finally {
      if (probe) this.probing = false;
    }
  }

  /** Applies `onStoreError` to a failed primary-store call. */
  async failed(
    e: unknown,
    request: StoreRequest,
    key: Key | undefined,
    decision: boolean,
    strict: boolean,
  ): Promise<StoreAnswer | undefined> {
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

  private async onFallback(fallback: Store, request: StoreRequest): Promise<StoreAnswer> {
    try {
      const out = callStore(fallback, request, this.timeoutMs);
      const answer = readAnswer(out instanceof Promise ? await out : out, request.policies.length);
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
