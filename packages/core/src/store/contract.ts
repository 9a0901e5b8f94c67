import type { KindObservation } from "../kinds/types.js";
import type { CompiledPolicy } from "../policy/compile.js";
import type { PolicyKind } from "../policy/schema.js";
import type { StoreAnswer, StoreResult } from "./answer.js";

/**
 * The Store contract: what the engine asks of a store. See docs/stores/writing-a-store.md.
 *
 * One `execute` call is one whole decision: every policy of the limiter, all-or-nothing, decided
 * at the store's clock. A remote store answers it in one round trip (a Lua script, one SQL
 * function call) and may coalesce many concurrent calls into one round trip.
 */
export interface Store {
  /** What the store is and can do; the engine and the conformance suite read it. */
  readonly capabilities: StoreCapabilities;
  /**
   * Decides one request: every policy of the limiter, all-or-nothing, at the store's clock, in one
   * round trip for a remote store. Rejects with a `SluiceError` (`retryable` for an outage).
   */
  execute(request: StoreRequest): StoreResult | Promise<StoreResult>;
  /**
   * Optional, for in-process stores (`capabilities.local`): the same decision as `execute` for a
   * take or a peek (never with `acquire`), answered synchronously and typed: no request object
   * per call, no wire array, no promise. `request` belongs to the engine, which refills it for
   * every call: read it during the call, keep nothing of it. `handles` is an array the engine
   * keeps with a cached key (empty at first) where the store may remember where the state of
   * `request.keys[i]` lives; it must check that a remembered entry is still current before use.
   * The answer may be an object the store reuses: the engine reads it before calling again.
   */
  decideNow?(request: StoreRequest, handles: unknown[]): StoreAnswer;
  /** Idempotent: creates tables, functions, scripts the store needs. */
  migrate?(): Promise<void>;
  /**
   * Releases what the store holds (timers, its own connections); never closes a client the user
   * passed in.
   */
  close?(): Promise<void>;
}

/** What a store is and can do, as data: the engine and the conformance suite read it. */
export interface StoreCapabilities {
  /** Free-form name for events and errors ("memory", "redis", "postgres"). */
  readonly name: string;
  /** "injectable": decisions use a clock the user (or a test) supplies; "server": the server's. */
  readonly clock: "injectable" | "server";
  /** In-process: answers without I/O, so the engine does not race it against `timeoutMs`. */
  readonly local: boolean;
  /**
   * The store must keep one decision's state together (Redis Cluster: one hash slot), so object
   * keys with more than one field need the limiter's `partitionBy`.
   */
  readonly requiresPartition: boolean;
  /**
   * Policy kinds the store decides; absent means every kind. The conformance suite leaves the
   * others out (a store without `concurrency` skips the lease tests).
   */
  readonly kinds?: readonly PolicyKind[];
}

/** What a store request asks for. */
export type StoreOp = "take" | "peek" | "refund" | "reconcile" | "release" | "renew" | "reset";

/** An observation narrowed to one policy, validated: integers >= 0 (limit >= 1). */
export type StoreObservation = KindObservation;

/** What one decision asks of the store. Every field is plain data. */
export interface StoreRequest {
  /** What the request asks for. */
  readonly op: StoreOp;
  /**
   * Every policy of the limiter, in spec order. The same array object is passed for every
   * request of one limiter configuration, so a store may cache an encoding of it by identity.
   */
  readonly policies: readonly CompiledPolicy[];
  /** One state key per policy (same order); all carry `{partition}` as their hash tag. */
  readonly keys: readonly string[];
  /** Escaped partition value shared by every key of this request. */
  readonly partition: string;
  /** take/refund: the cost charged to every rate policy. 0 for other ops. */
  readonly cost: number;
  /** take: also take one slot of every concurrency policy under `leaseId` (tryAcquire). */
  readonly acquire: boolean;
  /** take with acquire, release, renew: the lease id. */
  readonly leaseId: string | undefined;
  /** renew: new ttl for every slot of the lease; undefined means each policy's `leaseTtlMs`. */
  readonly leaseTtlMs: number | undefined;
  /** reconcile: one observation per policy index (undefined where none). */
  readonly observations: readonly (StoreObservation | undefined)[] | undefined;
  /** How long a learned limit (from reconcile) is kept, refreshed by each observation. */
  readonly learnedLimitTtlMs: number;
  /**
   * For calendar fixed windows in a time zone (`timeZone` set): sorted window starts around the
   * present, by policy index; undefined elsewhere. The window containing store-now `t` is
   * [b[i], b[i+1]) with b[i] <= t < b[i+1]. A store whose clock lies outside a list of two or
   * more starts applies nothing and answers BOUNDS_NEEDED with its clock (`boundsCover`); the
   * engine sends the request again with bounds around that clock. (Stores carry no time-zone
   * database; the engine computes these around its estimate of the store's present.)
   */
  readonly windowBounds: readonly (readonly number[] | undefined)[] | undefined;
  /**
   * When the caller stops waiting, on the store's clock (epoch ms; absent or 0: no deadline). A
   * remote store whose clock is past it when the request would be applied applies nothing and
   * rejects with `DeadlinePassedError`: a request answered without the store (a timeout, the
   * breaker) is never charged later, e.g. when a client's offline queue replays it. The engine
   * sends its estimate of the store clock plus `timeoutMs`. In-process stores may ignore it.
   */
  readonly deadlineMs?: number | undefined;
}
