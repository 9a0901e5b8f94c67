import { type Duration, durationToMs } from "../duration.js";
import { isValidTimeZone } from "../time-zone.js";
import { refillBoundIssue } from "./refill-bounds.js";
import {
  expected,
  isPlainObject,
  lengthOf,
  objectIssue,
  type SchemaIssue,
  type Validator,
  validator,
  wasAborted,
} from "./validate.js";

// Hand-written rather than zod: loading zod was most of the cost of importing @sluice/core. The
// zod description of the same format (tenants/zod-spec.ts) generates the JSON Schema, and a test
// holds these checks to it, issue for issue.

const DAY_MS = 86_400_000;
const MAX = Number.MAX_SAFE_INTEGER;

export const POLICY_KINDS = [
  "tokenBucket",
  "pool",
  "fixedWindow",
  "slidingWindow",
  "concurrency",
] as const;
/** The kinds of policy: `"tokenBucket" | "pool" | "fixedWindow" | "slidingWindow" | "concurrency"`. */
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** A continuous refill rate: `tokens` gained per `every`. */
export type Refill = {
  /** Tokens gained per `every`. */
  tokens: number;
  /** How often `tokens` are gained: ms, or a string like `"1s"`. */
  every: Duration;
};
/** Starts full; refills continuously at `refill.tokens` per `refill.every`, never above capacity. */
export type TokenBucketPolicy = {
  /** Which kind of policy this is. */
  kind: "tokenBucket";
  /** Unique within its limiter; used in `Decision.blockedBy` and in overrides. */
  name: string;
  /** Key fields this policy is counted by (e.g. `["tenant"]`); without it, all fields of the key. */
  scope?: string[] | undefined;
  /** Most tokens the bucket holds; it starts full. */
  capacity: number;
  /** Tokens added (`tokens`) per period (`every`), continuously. */
  refill: Refill;
};
/** Replenishing pool: starts full, then gains `refill.tokens` in whole steps of `refill.every`. */
export type PoolPolicy = {
  /** Which kind of policy this is. */
  kind: "pool";
  /** Unique within its limiter; used in `Decision.blockedBy` and in overrides. */
  name: string;
  /** Key fields this policy is counted by (e.g. `["tenant"]`); without it, all fields of the key. */
  scope?: string[] | undefined;
  /** Size of the pool; it starts full. */
  capacity: number;
  /** Tokens regained per step (`tokens`) and the step length (`every`). */
  refill: Refill;
};
/** At most `limit` per window. */
export type FixedWindowPolicy = {
  /** Which kind of policy this is. */
  kind: "fixedWindow";
  /** Unique within its limiter; used in `Decision.blockedBy` and in overrides. */
  name: string;
  /** Key fields this policy is counted by (e.g. `["tenant"]`); without it, all fields of the key. */
  scope?: string[] | undefined;
  /** Most admitted per window. */
  limit: number;
  /** Length of a window: ms, or a string like `"1m"`. */
  window: Duration;
  /** IANA zone; windows then start at local midnight (whole-day windows only). */
  timeZone?: string | undefined;
  /** `calendar` (default): aligned to the epoch or local midnight; `firstUse`: starts at the first admission. */
  align?: "calendar" | "firstUse" | undefined;
};
/** At most `limit` admitted in any half-open span of `window`. */
export type SlidingWindowPolicy = {
  /** Which kind of policy this is. */
  kind: "slidingWindow";
  /** Unique within its limiter; used in `Decision.blockedBy` and in overrides. */
  name: string;
  /** Key fields this policy is counted by (e.g. `["tenant"]`); without it, all fields of the key. */
  scope?: string[] | undefined;
  /** Most admitted in any span of `window`. */
  limit: number;
  /** Length of a window: ms, or a string like `"1m"`. */
  window: Duration;
  /** Slot size (default window/60, at least 1 ms). */
  precision?: Duration | undefined;
};
/** Semaphore of leases that expire unless released or renewed. */
export type ConcurrencyPolicy = {
  /** Which kind of policy this is. */
  kind: "concurrency";
  /** Unique within its limiter; used in `Decision.blockedBy` and in overrides. */
  name: string;
  /** Key fields this policy is counted by (e.g. `["tenant"]`); without it, all fields of the key. */
  scope?: string[] | undefined;
  /** Most leases held at once. */
  limit: number;
  /** A lease not released or renewed within this time expires: ms, or a string like `"30s"`. */
  leaseTtl: Duration;
};
/** A policy as plain JSON. */
export type Policy =
  | TokenBucketPolicy
  | PoolPolicy
  | FixedWindowPolicy
  | SlidingWindowPolicy
  | ConcurrencyPolicy;

type Path = readonly PropertyKey[];
type Issues = SchemaIssue[];

function isNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function positiveInt(what: string, v: unknown, path: Path, issues: Issues): void {
  if (!isNumber(v)) {
    issues.push({ code: "invalid_type", path, message: `${what} must be a number`, input: v });
    return;
  }
  const whole = `${what} must be a whole number`;
  if (!Number.isInteger(v)) {
    issues.push({ code: "invalid_type", path, message: whole, input: v });
    return;
  }
  if (!Number.isSafeInteger(v)) {
    issues.push({ code: v > 0 ? "too_big" : "too_small", path, message: whole, continue: true });
  }
  if (v <= 0) {
    issues.push({ code: "too_small", path, message: `${what} must be at least 1`, continue: true });
  }
  if (v > MAX)
    issues.push({ code: "too_big", path, message: `${what} is too large`, continue: true });
}

/**
 * Every duration goes through `durationToMs`, the one check of the format and of its range (1 ms to
 * 100 years), so a value the schema accepts always compiles. A number or string out of range is a
 * refinement (later checks still run); any other type fails outright.
 */
function duration(field: string, v: unknown, path: Path, issues: Issues): void {
  const ms = durationToMs(v, field);
  if (typeof ms === "number") return;
  if (isNumber(v) || typeof v === "string") {
    issues.push({ code: "custom", path, message: ms, continue: true });
  } else issues.push({ code: "invalid_union", path, message: ms, input: v });
}

function optionalDuration(field: string, v: unknown, path: Path, issues: Issues): void {
  if (v !== undefined) duration(field, v, path, issues);
}

function name(v: unknown, path: Path, issues: Issues): void {
  if (typeof v !== "string") {
    issues.push({ code: "invalid_type", path, message: "name must be a string", input: v });
  }
  const n = lengthOf(v);
  if (n === undefined) return;
  if (n < 1) {
    issues.push({ code: "too_small", path, message: "name must not be empty", continue: true });
  }
  if (n > 200) {
    const message = "name must be at most 200 characters";
    issues.push({ code: "too_big", path, message, continue: true });
  }
}

function scope(v: unknown, path: Path, issues: Issues): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) {
    const message = "scope must be an array of key field names";
    issues.push({ code: "invalid_type", path, message, input: v });
  } else {
    for (let i = 0; i < v.length; i++) {
      const field: unknown = v[i];
      if (typeof field !== "string") {
        const message = expected("string", field);
        issues.push({ code: "invalid_type", path: [...path, i], message, input: field });
      }
      if ((lengthOf(field) ?? 1) < 1) {
        const message = "scope fields must be non-empty strings";
        issues.push({ code: "too_small", path: [...path, i], message, continue: true });
      }
    }
  }
  if ((lengthOf(v) ?? 1) < 1) {
    const message = "scope must name at least one key field";
    issues.push({ code: "too_small", path, message, continue: true });
  }
}

function refill(v: unknown, path: Path, issues: Issues): void {
  if (!isPlainObject(v)) {
    issues.push({ code: "invalid_type", path, message: expected("object", v), input: v });
    return;
  }
  positiveInt("refill.tokens", v.tokens, [...path, "tokens"], issues);
  duration("refill.every", v.every, [...path, "every"], issues);
  objectIssue(v, REFILL_KEYS, path, issues);
}

function timeZone(v: unknown, path: Path, issues: Issues): void {
  if (v === undefined) return;
  if (typeof v !== "string") {
    const message = "timeZone must be an IANA time zone name";
    issues.push({ code: "invalid_type", path, message, input: v });
  } else if (!isValidTimeZone(v)) {
    const message = 'timeZone is not a known IANA time zone (e.g. "Europe/London")';
    issues.push({ code: "custom", path, message, continue: true });
  }
}

function align(v: unknown, path: Path, issues: Issues): void {
  if (v !== undefined && v !== "calendar" && v !== "firstUse") {
    const message = 'align must be "calendar" or "firstUse"';
    issues.push({ code: "invalid_value", path, message, input: v });
  }
}

function durationValue(d: unknown): number | undefined {
  const ms = durationToMs(d);
  return typeof ms === "number" ? ms : undefined;
}

type Fields = Record<string, unknown>;

function bucketOrPool(p: Fields, at: Path, issues: Issues): void {
  name(p.name, [...at, "name"], issues);
  scope(p.scope, [...at, "scope"], issues);
  positiveInt("capacity", p.capacity, [...at, "capacity"], issues);
  refill(p.refill, [...at, "refill"], issues);
}

/** A bucket or pool stays within what every store computes exactly (policy/refill-bounds.ts). */
function refillBound(kind: "tokenBucket" | "pool", p: Fields, at: Path, issues: Issues): void {
  const refill = p.refill as Fields;
  const every = durationValue(refill.every);
  if (every === undefined) return;
  const message = refillBoundIssue(kind, p.capacity as number, refill.tokens as number, every);
  if (message !== undefined) {
    issues.push({ code: "custom", path: [...at, "capacity"], message, continue: true });
  }
}

/** Checks of one kind's fields, in the order of its keys; refinements follow when nothing aborted. */
const KIND_CHECKS: Record<PolicyKind, (p: Fields, at: Path, issues: Issues) => void> = {
  tokenBucket(p, at, issues) {
    const start = issues.length;
    bucketOrPool(p, at, issues);
    objectIssue(p, POLICY_KEYS.tokenBucket, at, issues);
    if (wasAborted(issues, start)) return;
    refillBound("tokenBucket", p, at, issues);
  },
  pool(p, at, issues) {
    const start = issues.length;
    bucketOrPool(p, at, issues);
    objectIssue(p, POLICY_KEYS.pool, at, issues);
    if (wasAborted(issues, start)) return;
    refillBound("pool", p, at, issues);
  },
  fixedWindow(p, at, issues) {
    const start = issues.length;
    name(p.name, [...at, "name"], issues);
    scope(p.scope, [...at, "scope"], issues);
    positiveInt("limit", p.limit, [...at, "limit"], issues);
    duration("window", p.window, [...at, "window"], issues);
    timeZone(p.timeZone, [...at, "timeZone"], issues);
    align(p.align, [...at, "align"], issues);
    objectIssue(p, POLICY_KEYS.fixedWindow, at, issues);
    if (wasAborted(issues, start) || p.timeZone === undefined) return;
    if (p.align === "firstUse") {
      const message = 'timeZone cannot be combined with align "firstUse"';
      issues.push({ code: "custom", path: [...at, "timeZone"], message, continue: true });
    }
    const ms = durationValue(p.window);
    if (ms !== undefined && ms % DAY_MS !== 0) {
      const message = "window must be a whole number of days when timeZone is set";
      issues.push({ code: "custom", path: [...at, "window"], message, continue: true });
    }
  },
  slidingWindow(p, at, issues) {
    const start = issues.length;
    name(p.name, [...at, "name"], issues);
    scope(p.scope, [...at, "scope"], issues);
    positiveInt("limit", p.limit, [...at, "limit"], issues);
    duration("window", p.window, [...at, "window"], issues);
    optionalDuration("precision", p.precision, [...at, "precision"], issues);
    objectIssue(p, POLICY_KEYS.slidingWindow, at, issues);
    if (wasAborted(issues, start)) return;
    const w = durationValue(p.window);
    const pr = p.precision === undefined ? undefined : durationValue(p.precision);
    if (w !== undefined && pr !== undefined && pr > w) {
      const message = "precision must not exceed window";
      issues.push({ code: "custom", path: [...at, "precision"], message, continue: true });
    }
  },
  concurrency(p, at, issues) {
    name(p.name, [...at, "name"], issues);
    scope(p.scope, [...at, "scope"], issues);
    positiveInt("limit", p.limit, [...at, "limit"], issues);
    duration("leaseTtl", p.leaseTtl, [...at, "leaseTtl"], issues);
    objectIssue(p, POLICY_KEYS.concurrency, at, issues);
  },
};

/** Fields each kind accepts, in the order they are checked. */
export const POLICY_KEYS: Record<PolicyKind, readonly string[]> = {
  tokenBucket: ["kind", "name", "scope", "capacity", "refill"],
  pool: ["kind", "name", "scope", "capacity", "refill"],
  fixedWindow: ["kind", "name", "scope", "limit", "window", "timeZone", "align"],
  slidingWindow: ["kind", "name", "scope", "limit", "window", "precision"],
  concurrency: ["kind", "name", "scope", "limit", "leaseTtl"],
};
export const REFILL_KEYS: readonly string[] = ["tokens", "every"];

const KIND_MESSAGE = `kind must be one of ${POLICY_KINDS.map((k) => `"${k}"`).join(", ")}`;

/** Checks one policy, pushing its issues with paths under `at`. */
export function checkPolicy(v: unknown, at: Path, issues: Issues): void {
  if (!isPlainObject(v)) {
    issues.push({ code: "invalid_type", path: at, message: KIND_MESSAGE, input: v });
    return;
  }
  const kind = v.kind;
  if (typeof kind !== "string" || !Object.hasOwn(KIND_CHECKS, kind)) {
    issues.push({ code: "invalid_union", path: [...at, "kind"], message: KIND_MESSAGE, input: v });
    return;
  }
  KIND_CHECKS[kind as PolicyKind](v, at, issues);
}

/** Checks a policy list, pushing its issues with paths under `at`. */
export function checkPolicies(v: unknown, at: Path, issues: Issues): void {
  if (!Array.isArray(v)) {
    const message = "policies must be an array of policy objects";
    issues.push({ code: "invalid_type", path: at, message, input: v });
    return;
  }
  for (let i = 0; i < v.length; i++) checkPolicy(v[i], [...at, i], issues);
}

export const policySchema: Validator<Policy> = validator(checkPolicy);
/** Shape of a policy list; unique names are checked by `duplicateNames` (see below). */
export const policiesSchema: Validator<Policy[]> = validator(checkPolicies);

/**
 * Repeated policy names, by index. Kept apart from the shape checks so every problem is reported
 * at once, whatever else is wrong with the list.
 */
export function duplicateNames(input: unknown): { index: number; message: string }[] {
  if (!Array.isArray(input)) return [];
  const seen = new Map<string, number>();
  const out: { index: number; message: string }[] = [];
  input.forEach((p: unknown, i) => {
    const name = (p as { name?: unknown } | null)?.name;
    if (typeof name !== "string") return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, i);
    else {
      out.push({
        index: i,
        message: `name "${name}" is already used by policies[${first}]; names must be unique`,
      });
    }
  });
  return out;
}
