import { durationToMs } from "../duration.js";
import { ConfigError } from "../errors.js";
import { formatPath, toConfigIssues } from "./issues.js";
import {
  duplicateNames,
  type Policy,
  type PolicyKind,
  policiesSchema,
  policySchema,
} from "./schema.js";

/**
 * A validated policy with every duration in ms. This is what stores receive: plain numbers and
 * strings, no functions, so Lua and SQL can evaluate it.
 */
export type CompiledPolicy =
  | CompiledTokenBucket
  | CompiledPool
  | CompiledFixedWindow
  | CompiledSlidingWindow
  | CompiledConcurrency;

interface CompiledBase {
  readonly name: string;
  /** Key fields the policy is counted by; undefined means every field of the key. */
  readonly scope: readonly string[] | undefined;
}
/** A `tokenBucket` policy after validation, durations in ms. */
export interface CompiledTokenBucket extends CompiledBase {
  /** Always `"tokenBucket"`. */
  readonly kind: "tokenBucket";
  /** Most tokens held; the bucket starts full. */
  readonly capacity: number;
  /** Tokens added per `refillEveryMs`, continuously. */
  readonly refillTokens: number;
  /** Refill period (ms). */
  readonly refillEveryMs: number;
  /** Time to refill from empty to full (reported in PolicyState, read by rate-limit headers). */
  readonly windowMs: number;
}
/** A `pool` policy after validation, durations in ms. */
export interface CompiledPool extends CompiledBase {
  /** Always `"pool"`. */
  readonly kind: "pool";
  /** Most tokens held; the pool starts full. */
  readonly capacity: number;
  /** Tokens regained per step. */
  readonly refillTokens: number;
  /** Step length (ms), counted from the moment the pool first dropped below capacity. */
  readonly refillEveryMs: number;
  /** Time to refill from empty to full, in whole steps. */
  readonly windowMs: number;
}
/** A `fixedWindow` policy after validation, durations in ms. */
export interface CompiledFixedWindow extends CompiledBase {
  /** Always `"fixedWindow"`. */
  readonly kind: "fixedWindow";
  /** Most admissions per window. */
  readonly limit: number;
  /** Window length (ms). */
  readonly windowMs: number;
  /**
   * `calendar`: windows aligned to the epoch (or local midnight); `firstUse`: from the first admission.
   */
  readonly align: "calendar" | "firstUse";
  /** IANA zone for calendar windows of whole days; undefined means UTC (epoch-aligned). */
  readonly timeZone: string | undefined;
}
/** A `slidingWindow` policy after validation, durations in ms. */
export interface CompiledSlidingWindow extends CompiledBase {
  /** Always `"slidingWindow"`. */
  readonly kind: "slidingWindow";
  /** Most admissions in any span of `windowMs`. */
  readonly limit: number;
  /** Window length (ms). */
  readonly windowMs: number;
  /** Slot length (ms) admissions are counted in. */
  readonly precisionMs: number;
}
/** A `concurrency` policy after validation, durations in ms. */
export interface CompiledConcurrency extends CompiledBase {
  /** Always `"concurrency"`. */
  readonly kind: "concurrency";
  /** Most leases held at once. */
  readonly limit: number;
  /** Time to live of a lease not renewed (ms). */
  readonly leaseTtlMs: number;
}

/** Configured capacity/limit of a compiled policy. */
export function configuredLimit(p: CompiledPolicy): number {
  return p.kind === "tokenBucket" || p.kind === "pool" ? p.capacity : p.limit;
}

/**
 * Whether the policy limits a rate (every kind but `concurrency`), so `take` charges it.
 *
 * @param p - a compiled policy.
 */
export function isRatePolicy(p: CompiledPolicy): boolean {
  return p.kind !== "concurrency";
}

/** A duration that passed `policySchema`, which checks every duration with `durationToMs`. */
function ms(d: number | string): number {
  return durationToMs(d) as number;
}

/** Compiles one policy that has already passed `policySchema`. */
export function compileValidPolicy(p: Policy): CompiledPolicy {
  const scope = p.scope === undefined ? undefined : Object.freeze([...p.scope]);
  switch (p.kind) {
    case "tokenBucket":
    case "pool": {
      const everyMs = ms(p.refill.every);
      return Object.freeze({
        kind: p.kind,
        name: p.name,
        scope,
        capacity: p.capacity,
        refillTokens: p.refill.tokens,
        refillEveryMs: everyMs,
        windowMs:
          p.kind === "pool"
            ? Math.ceil(p.capacity / p.refill.tokens) * everyMs
            : Math.ceil((p.capacity * everyMs) / p.refill.tokens),
      });
    }
    case "fixedWindow":
      return Object.freeze({
        kind: p.kind,
        name: p.name,
        scope,
        limit: p.limit,
        windowMs: ms(p.window),
        align: p.align ?? "calendar",
        timeZone: p.timeZone,
      });
    case "slidingWindow": {
      const windowMs = ms(p.window);
      return Object.freeze({
        kind: p.kind,
        name: p.name,
        scope,
        limit: p.limit,
        windowMs,
        precisionMs:
          p.precision === undefined ? Math.max(1, Math.floor(windowMs / 60)) : ms(p.precision),
      });
    }
    case "concurrency":
      return Object.freeze({
        kind: p.kind,
        name: p.name,
        scope,
        limit: p.limit,
        leaseTtlMs: ms(p.leaseTtl),
      });
  }
}

/**
 * Validates a policy list and compiles it. Throws a ConfigError listing every problem, with paths
 * under `pathPrefix` (default `policies`).
 */
export function compilePolicies(
  input: unknown,
  pathPrefix: readonly PropertyKey[] = ["policies"],
): readonly CompiledPolicy[] {
  const parsed = policiesSchema.safeParse(input);
  const issues = parsed.success
    ? []
    : toConfigIssues(parsed.error.issues, pathPrefix, policyKnownKeys, input);
  for (const d of duplicateNames(input)) {
    issues.push({ path: formatPath([...pathPrefix, d.index, "name"]), message: d.message });
  }
  // A limiter without a policy would admit everything: almost certainly a mistake in the config.
  if (Array.isArray(input) && input.length === 0) {
    issues.push({
      path: formatPath(pathPrefix),
      message: "policies must name at least one policy",
    });
  }
  if (!parsed.success || issues.length > 0) throw new ConfigError(issues);
  return Object.freeze(parsed.data.map(compileValidPolicy));
}

const KEYS: Record<PolicyKind, readonly string[]> = {
  tokenBucket: ["kind", "name", "scope", "capacity", "refill"],
  pool: ["kind", "name", "scope", "capacity", "refill"],
  fixedWindow: ["kind", "name", "scope", "limit", "window", "timeZone", "align"],
  slidingWindow: ["kind", "name", "scope", "limit", "window", "precision"],
  concurrency: ["kind", "name", "scope", "limit", "leaseTtl"],
};

/** Fields accepted by the policy object (or its `refill`) at a path, for "did you mean" hints. */
export function policyKnownKeys(
  path: readonly PropertyKey[],
  value: unknown,
): readonly string[] | undefined {
  const last = path[path.length - 1];
  if (last === "refill") return ["tokens", "every"];
  const kind = (value as { kind?: unknown } | undefined)?.kind;
  return typeof kind === "string" && kind in KEYS ? KEYS[kind as PolicyKind] : undefined;
}

export { policySchema };
