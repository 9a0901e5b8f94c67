import type { CompiledPolicy } from "./policy/compile.js";

/**
 * The Store contract: what the engine asks of a store. See docs/stores/writing-a-store.md.
 *
 * One `execute` call is one whole decision: every policy of the limiter, all-or-nothing, decided
 * at the store's clock. A remote store answers it in one round trip (a Lua script, one SQL
 * function call) and may coalesce many concurrent calls into one round trip.
 */
export interface Store {
  readonly capabilities: StoreCapabilities;
  execute(request: StoreRequest): StoreResult | Promise<StoreResult>;
  /** Idempotent: creates tables, functions, scripts the store needs. */
  migrate?(): Promise<void>;
  close?(): Promise<void>;
}

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
}

export type StoreOp = "take" | "peek" | "refund" | "reconcile" | "release" | "renew" | "reset";

/** What one decision asks of the store. Every field is plain data. */
export interface StoreRequest {
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
   * [b[i], b[i+1]) with b[i] <= t < b[i+1]; outside the list, epoch-aligned windows of
   * `windowMs`. (Stores carry no time-zone database; the engine computes these.)
   */
  readonly windowBounds: readonly (readonly number[] | undefined)[] | undefined;
}

/** An observation narrowed to one policy, validated: integers >= 0 (limit >= 1). */
export interface StoreObservation {
  readonly remaining: number | undefined;
  readonly limit: number | undefined;
  readonly resetAtMs: number | undefined;
}

/**
 * The answer, as a flat array of integers (cheap to return from Lua and SQL):
 *
 *   [0] allowed: 1 or 0 (take: charged to all; peek: a take of cost 1 would be admitted;
 *       renew: 1 if every slot was renewed, 0 if the lease is gone; other ops: 1)
 *   [1] store clock, epoch ms, at which the decision was made
 *   [2] lease expiry (take with acquire when allowed, renew when allowed), else 0
 *   [3] reserved, 0
 *   then for each policy i, at offset 4 + 5 * i:
 *   [+0] limit in force (a live learned limit wins over the configured one)
 *   [+1] remaining after the op (tokenBucket: floor of the level; concurrency: free slots)
 *   [+2] resetAtMs: when the policy is back to its full limit (the store clock if already full)
 *   [+3] retryAfterMs for the requested cost: 0 when this policy admits it, -1 when it never can
 *   [+4] blocked: 1 when this policy refused the request, else 0
 *
 * The reference implementation is `evaluate()` in `@sluice/core`; `@sluice/core/testing`
 * checks a store against it.
 */
export type StoreResult = readonly number[];

export const RESULT_HEADER = 4;
export const RESULT_STRIDE = 5;
