import type {
  CompiledConcurrency,
  CompiledFixedWindow,
  CompiledPolicy,
  CompiledPool,
  CompiledSlidingWindow,
  CompiledTokenBucket,
} from "../policy/compile.js";
import type { PolicyKind } from "../policy/schema.js";

/**
 * Units of parameters and state fields. Every value is an integer.
 * - `count`: requests (or cost units) admitted, leases held, a limit
 * - `tokens`: whole tokens
 * - `tokenMs`: token-milliseconds; one token is `refillEveryMs` of them (exact integer refill)
 * - `ms`: a duration in milliseconds
 * - `epochMs`: a point in time, epoch milliseconds (0 where the field says "none")
 * - `slot`: a sliding-window slot index, floor(t / precisionMs)
 * - `flag`: 0 or 1
 */
export type KindUnit = "count" | "tokens" | "tokenMs" | "ms" | "epochMs" | "slot" | "flag";

/** One parameter of a policy kind, as compiled (for docs and generated store code). */
export interface KindParam {
  /** Field name on the compiled policy. */
  readonly name: string;
  /** Unit of the value. */
  readonly unit: KindUnit;
  /** What the parameter means. */
  readonly description: string;
}

/**
 * One state field. `shape`: "scalar" is one number; "list" a list of numbers (parallel lists of
 * one kind have the same length, ascending by the first); "map" lease id -> number.
 */
export interface KindStateField {
  /** Field name in the stored state. */
  readonly name: string;
  /** Unit of the value. */
  readonly unit: KindUnit;
  /** A single number, a list, or a map. */
  readonly shape: "scalar" | "list" | "map";
  /** What the field holds. */
  readonly description: string;
}

/** The compiled policy of each kind. */
export interface CompiledByKind {
  /** A compiled `tokenBucket` policy. */
  tokenBucket: CompiledTokenBucket;
  /** A compiled `pool` policy. */
  pool: CompiledPool;
  /** A compiled `fixedWindow` policy. */
  fixedWindow: CompiledFixedWindow;
  /** A compiled `slidingWindow` policy. */
  slidingWindow: CompiledSlidingWindow;
  /** A compiled `concurrency` policy. */
  concurrency: CompiledConcurrency;
}

/** One kind's row of the table. `KindSpec` alone is any kind's. */
export interface KindSpec<K extends PolicyKind = PolicyKind> {
  /** The kind this entry describes. */
  readonly kind: K;
  /** Wire code: what the Lua script and the SQL function receive for this kind. */
  readonly code: number;
  /** What a store receives per policy, in wire order. */
  readonly params: readonly KindParam[];
  /** A compiled policy's values of `params`, in the same order. */
  paramValues(p: CompiledByKind[K]): number[];
  /**
   * The state of one policy and key, in storage order (the Redis entry payload, the PostgreSQL
   * columns), with the `StateBase` fields where they are stored. Every entry also carries
   * `dueMs` ahead of these (see `DUE_FIELD`).
   */
  readonly state: readonly KindStateField[];
}

const param = (name: string, unit: KindUnit, description: string): KindParam =>
  Object.freeze({ name, unit, description });
const field = (
  name: string,
  unit: KindUnit,
  description: string,
  shape: KindStateField["shape"] = "scalar",
): KindStateField => Object.freeze({ name, unit, shape, description });

const LEARNED_LIMIT = field("learnedLimit", "count", "limit learned through reconcile; 0: none");
const LEARNED_LIMIT_UNTIL = field(
  "learnedLimitUntilMs",
  "epochMs",
  "when the learned limit lapses",
);

/** Every entry's first field: from then on the state is back to default if nothing touched it. */
export const DUE_FIELD: KindStateField = field(
  "dueMs",
  "epochMs",
  "from then on the state is back to default if nothing touches it (expiry, sweeping)",
);

const REFILL_PARAMS = Object.freeze([
  param("capacity", "tokens", "most tokens held; the configured limit"),
  param("refillTokens", "tokens", "tokens gained per refillEveryMs"),
  param("refillEveryMs", "ms", "refill period"),
]);

const tokenBucket: KindSpec<"tokenBucket"> = Object.freeze({
  kind: "tokenBucket",
  code: 1,
  params: REFILL_PARAMS,
  paramValues: (p: CompiledTokenBucket) => [p.capacity, p.refillTokens, p.refillEveryMs],
  state: Object.freeze([
    field(
      "consumed",
      "tokenMs",
      "token-milliseconds consumed at consumedAtMs (a token is refillEveryMs of them); 0: full",
    ),
    field(
      "consumedAtMs",
      "epochMs",
      "when the bucket has consumed `consumed`; later than now while refill is held back",
    ),
    field("everyMs", "ms", "the refillEveryMs `consumed` is counted in (a token is that many)"),
    LEARNED_LIMIT,
    LEARNED_LIMIT_UNTIL,
  ]),
});

const pool: KindSpec<"pool"> = Object.freeze({
  kind: "pool",
  code: 2,
  params: REFILL_PARAMS,
  paramValues: (p: CompiledPool) => [p.capacity, p.refillTokens, p.refillEveryMs],
  state: Object.freeze([
    field("consumed", "tokens", "whole tokens consumed; 0: full"),
    field("anchorMs", "epochMs", "refill steps are counted from here; 0 while nothing is consumed"),
    field("everyMs", "ms", "the refillEveryMs the steps since anchorMs are counted in"),
    LEARNED_LIMIT,
    LEARNED_LIMIT_UNTIL,
  ]),
});

const fixedWindow: KindSpec<"fixedWindow"> = Object.freeze({
  kind: "fixedWindow",
  code: 3,
  params: Object.freeze([
    param("limit", "count", "most admitted per window"),
    param("windowMs", "ms", "window length (a zoned day window takes its bounds from the request)"),
    param("firstUse", "flag", "1: the window starts at the first admitted request; 0: calendar"),
  ]),
  paramValues: (p: CompiledFixedWindow) => [p.limit, p.windowMs, p.align === "firstUse" ? 1 : 0],
  state: Object.freeze([
    field("count", "count", "admitted in the current window"),
    field("startMs", "epochMs", "start of the current window (no formula reads it)"),
    field("endMs", "epochMs", "end of the current window (a reconcile may move it)"),
    LEARNED_LIMIT,
    LEARNED_LIMIT_UNTIL,
  ]),
});

const slidingWindow: KindSpec<"slidingWindow"> = Object.freeze({
  kind: "slidingWindow",
  code: 4,
  params: Object.freeze([
    param("limit", "count", "most admitted in any span of windowMs"),
    param("windowMs", "ms", "window length"),
    param("precisionMs", "ms", "slot length"),
  ]),
  paramValues: (p: CompiledSlidingWindow) => [p.limit, p.windowMs, p.precisionMs],
  state: Object.freeze([
    LEARNED_LIMIT,
    LEARNED_LIMIT_UNTIL,
    field(
      "slots",
      "slot",
      "slots with admissions, ascending; slot s counts until (s + 1) * precisionMs + windowMs",
      "list",
    ),
    field("counts", "count", "admitted in each slot (parallel to slots)", "list"),
  ]),
});

const concurrency: KindSpec<"concurrency"> = Object.freeze({
  kind: "concurrency",
  code: 5,
  params: Object.freeze([
    param("limit", "count", "most leases held at once"),
    param("leaseTtlMs", "ms", "a lease not renewed within it expires"),
  ]),
  paramValues: (p: CompiledConcurrency) => [p.limit, p.leaseTtlMs],
  state: Object.freeze([
    LEARNED_LIMIT,
    LEARNED_LIMIT_UNTIL,
    field("leases", "epochMs", "lease id -> expiry; a lease counts while now < expiry", "map"),
  ]),
});

/** The table of policy kinds: wire code, parameters and state fields of each. */
export const KINDS: { readonly [K in PolicyKind]: KindSpec<K> } = Object.freeze({
  tokenBucket,
  pool,
  fixedWindow,
  slidingWindow,
  concurrency,
});

/** The spec of some kind (a union: narrow on `kind`). */
export type AnyKindSpec = { [K in PolicyKind]: KindSpec<K> }[PolicyKind];

/** Every kind, by ascending code. */
export const KIND_LIST: readonly AnyKindSpec[] = Object.freeze(
  (Object.values(KINDS) as AnyKindSpec[]).sort((a, b) => a.code - b.code),
);

/** The kind with wire code `code`, or undefined. */
export function kindOfCode(code: number): AnyKindSpec | undefined {
  return KIND_LIST.find((k) => k.code === code);
}

/** A compiled policy's parameter values in wire order (see `KindSpec.params`). */
export function paramValues(p: CompiledPolicy): number[] {
  return (KINDS[p.kind].paramValues as (q: CompiledPolicy) => number[])(p);
}
