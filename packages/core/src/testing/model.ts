import { KeyPlan, type ResolvedKey } from "../keys.js";
import type { CompiledPolicy } from "../policy/compile.js";
import type { StoreResult } from "../store/answer.js";
import type { Store, StoreObservation, StoreRequest } from "../store/contract.js";
import { evaluate, type PolicyStateRecord } from "../store/evaluate.js";
import { zoneWindowBounds } from "../time-zone.js";

const DAY_MS = 86_400_000;

/** What drives time during a run: a fake clock the test moves, or real sleeps. */
export interface TimeDriver {
  /** The client's idea of now (for time-zone window bounds and server resets). */
  now(): number;
  /** Lets `ms` milliseconds pass (moving the clock, or sleeping). */
  pass(ms: number): Promise<void>;
}

/** Time passing for real: sleeps of at most `maxSleepMs` per step (a server clock). */
export function realTime(maxSleepMs: number): TimeDriver {
  return {
    now: () => Date.now(),
    pass: async (ms) => {
      if (ms > 0) await new Promise((r) => setTimeout(r, Math.min(ms, maxSleepMs)));
    },
  };
}

/**
 * Window bounds for one request, by policy index (see `StoreRequest.windowBounds`), from the
 * client's clock. The default computes them from each zoned policy's time zone, as the engine
 * does; a store's own tests may hand explicit bounds instead.
 */
export type WindowBoundsFn = (
  policies: readonly CompiledPolicy[],
  clientNowMs: number,
) => readonly (readonly number[] | undefined)[] | undefined;

const zoneBounds: WindowBoundsFn = (policies, nowMs) => {
  if (!policies.some((p) => p.kind === "fixedWindow" && p.timeZone !== undefined)) return undefined;
  return policies.map((p) =>
    p.kind === "fixedWindow" && p.timeZone !== undefined
      ? zoneWindowBounds(p.timeZone, p.windowMs / DAY_MS, nowMs)
      : undefined,
  );
};

/** The op-specific fields of a store request (the rest comes from the factory). */
export interface RequestParts {
  /** What the request asks for. */
  op: StoreRequest["op"];
  /** Cost charged to every rate policy (default 1 for take, 0 otherwise). */
  cost?: number;
  /** Also take a slot of every concurrency policy. */
  acquire?: boolean;
  /** The lease id (tryAcquire, release, renew). */
  leaseId?: string;
  /** renew: new time to live (ms). */
  leaseTtlMs?: number;
  /** reconcile: one observation per policy index. */
  observations?: (StoreObservation | undefined)[];
  /** How long a learned limit is kept (ms). */
  learnedLimitTtlMs?: number;
}

/** Options of `RequestFactory`. */
export interface RequestFactoryOptions {
  /** Key field that qualifies every policy's state (the limiter's `partitionBy`). */
  partitionBy?: string | undefined;
  /** Default learned-limit ttl of a reconcile (ms, default 250). */
  learnedLimitTtlMs?: number;
  /** Window bounds per request (default: from each zoned policy's time zone). */
  windowBounds?: WindowBoundsFn;
}

/** Builds requests the way the limiter does: KeyPlan keys, time-zone bounds, a learned-limit ttl. */
export class RequestFactory {
  /** How keys are resolved into store keys for these policies. */
  readonly plan: KeyPlan;
  private readonly learnedLimitTtlMs: number;
  private readonly windowBounds: WindowBoundsFn;

  constructor(
    readonly policies: readonly CompiledPolicy[],
    prefix: string,
    store: Store,
    private readonly time: TimeDriver,
    options: RequestFactoryOptions = {},
  ) {
    this.plan = new KeyPlan(
      prefix,
      policies,
      options.partitionBy,
      store.capabilities.requiresPartition,
    );
    this.learnedLimitTtlMs = options.learnedLimitTtlMs ?? 250;
    this.windowBounds = options.windowBounds ?? zoneBounds;
  }

  /** A complete store request for `resolved`, as the limiter would send it. */
  build(resolved: ResolvedKey, parts: RequestParts): StoreRequest {
    return {
      op: parts.op,
      policies: this.policies,
      keys: resolved.keys,
      partition: resolved.partition,
      cost: parts.cost ?? 0,
      acquire: parts.acquire ?? false,
      leaseId: parts.leaseId,
      leaseTtlMs: parts.leaseTtlMs,
      observations: parts.observations,
      learnedLimitTtlMs: parts.learnedLimitTtlMs ?? this.learnedLimitTtlMs,
      windowBounds: this.windowBounds(this.policies, this.time.now()),
    };
  }
}

const mapsAsObjects = (_k: string, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v);

/**
 * The comparison harness's core: keeps the reference state of every key and checks each store
 * answer against `evaluate()` at the clock the store reported. Every store's differential tests
 * go through it, whatever drives them (the conformance suite, `compareWithReference`, or a
 * store's own fast-check property).
 */
export class ReferenceModel {
  private readonly states = new Map<string, PolicyStateRecord>();
  private lastNow = Number.NEGATIVE_INFINITY;
  /** Per state key, for `clockOrder: "perKey"`. */
  private readonly lastNowOf = new Map<string, number>();
  private readonly clockOrder: "global" | "perKey";
  /** What happened so far (labels, clocks, answers), for failure messages. */
  readonly log: string[] = [];

  /**
   * `clockOrder`: whose clock must never go backwards from one checked answer to the next:
   * "global" (default; answers checked one at a time) or "perKey" (decisions issued together
   * on different partitions may be decided in any order; those on one key may not).
   */
  constructor(options: { clockOrder?: "global" | "perKey" } = {}) {
    this.clockOrder = options.clockOrder ?? "global";
  }

  /**
   * The reference answer for `request` decided at `nowMs`; moves the model's state on as a store
   * would. Call it once per request, in the order the store decided them.
   */
  expected(request: StoreRequest, nowMs: number): number[] {
    return this.decide(request, nowMs).result;
  }

  /**
   * Checks one store answer (decided in this order, at the clock it reports); throws an Error
   * with both answers, the state before and the history when they differ, or when the store clock
   * went backwards.
   */
  check(request: StoreRequest, result: StoreResult, label: string = request.op): void {
    const actual = Array.from(result);
    const now = actual[1]!;
    this.log.push(`${label} @${now} -> ${actual.join(",")}`);
    const last =
      this.clockOrder === "global"
        ? this.lastNow
        : Math.max(...request.keys.map((k) => this.lastNowOf.get(k) ?? Number.NEGATIVE_INFINITY));
    if (!(now >= last)) {
      throw new Error(`store clock went backwards: ${now} after ${last}\n${this.log.join("\n")}`);
    }
    this.lastNow = Math.max(this.lastNow, now);
    for (const k of request.keys) this.lastNowOf.set(k, now);
    const before = request.keys.map((k) => this.states.get(k));
    const expected = this.decide(request, now).result;
    if (actual.length !== expected.length || actual.some((v, i) => v !== expected[i])) {
      throw new Error(
        [
          `store result differs from the reference math for ${label}`,
          `  store:     [${actual.join(", ")}]`,
          `  reference: [${expected.join(", ")}]`,
          `  policies:  ${JSON.stringify(request.policies)}`,
          `  keys:      ${JSON.stringify(request.keys)}`,
          `  state before: ${JSON.stringify(before, mapsAsObjects)}`,
          "  history:",
          ...this.log.map((l) => `    ${l}`),
        ].join("\n"),
      );
    }
  }

  /** Executes `request` on `store` and checks the answer. */
  async apply(store: Store, request: StoreRequest, label?: string): Promise<StoreResult> {
    const result = await store.execute(request);
    this.check(request, result, label);
    return result;
  }

  /** The reference state at `key` (undefined: default), for store-specific assertions. */
  state(key: string): PolicyStateRecord | undefined {
    return this.states.get(key);
  }

  private decide(request: StoreRequest, nowMs: number) {
    const stored = request.keys.map((k) => this.states.get(k));
    const e = evaluate(request, stored, nowMs);
    if (e.write) {
      for (let i = 0; i < request.keys.length; i++) {
        const s = e.states[i];
        if (s === undefined) this.states.delete(request.keys[i]!);
        else this.states.set(request.keys[i]!, s);
      }
    }
    return e;
  }
}
