import { KeyPlan, type ResolvedKey } from "../keys.js";
import { type CompiledPolicy, configuredLimit } from "../policy/compile.js";
import type { StoreOp, StoreRequest } from "../store/index.js";
import type { Settings } from "./options.js";
import { ZoneBounds } from "./zone-bounds.js";

/** A limiter configuration: compiled once, swapped whole by `updatePolicies`. */
export interface Config {
  /**
   * The compiled policies in an array of the config's own, not frozen: V8 (Node 20) answers an
   * indexed load from a frozen array through an inline-cache call even in optimised code, and
   * every decision loops over the policies.
   */
  readonly policies: readonly CompiledPolicy[];
  /** The frozen array `limiter.policies` hands out. */
  readonly published: readonly CompiledPolicy[];
  readonly plan: KeyPlan;
  /** Policy index by name. */
  readonly index: ReadonlyMap<string, number>;
  readonly hasSlots: boolean;
  /** Least configured limit over the rate policies (a cost above it may never fit). */
  readonly minRateLimit: number;
  /** Least lease TTL over the concurrency policies (Infinity without any). */
  readonly minLeaseTtlMs: number;
  readonly learnedLimitTtlMs: number;
  /** Undefined unless a calendar fixed window has a time zone. */
  readonly zones: ZoneBounds | undefined;
  /**
   * The request the in-process fast path fills and hands to the store for every take and peek
   * (the store reads it synchronously and keeps nothing of it).
   */
  readonly scratch: { -readonly [K in keyof StoreRequest]: StoreRequest[K] };
}

export function compileConfig(policies: readonly CompiledPolicy[], settings: Settings): Config {
  let minRateLimit = Number.POSITIVE_INFINITY;
  let minLeaseTtlMs = Number.POSITIVE_INFINITY;
  for (const p of policies) {
    if (p.kind === "concurrency") minLeaseTtlMs = Math.min(minLeaseTtlMs, p.leaseTtlMs);
    else minRateLimit = Math.min(minRateLimit, configuredLimit(p));
  }
  const list = [...policies];
  return {
    policies: list,
    published: policies,
    plan: new KeyPlan(
      settings.prefix,
      policies,
      settings.partitionBy,
      settings.store.capabilities.requiresPartition,
      // An in-process store with the fast path finds a cached key's state through its handles.
      settings.store.capabilities.local && settings.store.decideNow !== undefined,
    ),
    index: new Map(policies.map((p, i) => [p.name, i])),
    hasSlots: minLeaseTtlMs !== Number.POSITIVE_INFINITY,
    minRateLimit,
    minLeaseTtlMs,
    learnedLimitTtlMs: settings.learnedLimitTtlMs,
    zones: ZoneBounds.of(policies),
    scratch: {
      op: "take",
      policies: list,
      keys: [],
      partition: "",
      cost: 0,
      acquire: false,
      leaseId: undefined,
      leaseTtlMs: undefined,
      observations: undefined,
      learnedLimitTtlMs: settings.learnedLimitTtlMs,
      windowBounds: undefined,
    },
  };
}

/** The parts of a request beyond op, key and cost (a lease, observations). */
export interface RequestExtras {
  readonly acquire?: boolean;
  readonly leaseId?: string;
  readonly leaseTtlMs?: number | undefined;
  readonly observations?: StoreRequest["observations"];
}

/**
 * A new request; `storeNowMs` places the time-zone bounds (ignored without zoned windows);
 * `deadlineMs`: when the caller stops waiting, on the store clock (undefined: none).
 */
export function storeRequest(
  config: Config,
  op: StoreOp,
  resolved: ResolvedKey,
  cost: number,
  storeNowMs: number,
  extras?: RequestExtras,
  deadlineMs?: number,
): StoreRequest {
  return {
    op,
    policies: config.policies,
    keys: resolved.keys,
    partition: resolved.partition,
    cost,
    acquire: extras?.acquire ?? false,
    leaseId: extras?.leaseId,
    leaseTtlMs: extras?.leaseTtlMs,
    observations: extras?.observations,
    learnedLimitTtlMs: config.learnedLimitTtlMs,
    windowBounds: config.zones?.at(storeNowMs),
    deadlineMs,
  };
}
