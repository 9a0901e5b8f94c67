import fc from "fast-check";
import { compilePolicies } from "../policy/compile.js";
import type { Policy, PolicyKind } from "../policy/schema.js";
import { readAnswer, type StoreResult } from "../store/answer.js";
import type { Store, StoreRequest } from "../store/contract.js";
import { nextOffsetChange } from "./dst.js";
import { extremeScenarioArb } from "./extremes.js";
import {
  ReferenceModel,
  RequestFactory,
  type RequestFactoryOptions,
  type RequestParts,
  realTime,
  type TimeDriver,
  type WindowBoundsFn,
} from "./model.js";
import { type Command, type Scenario, scenarioArb } from "./scenario.js";

/** Options of `runScenario`. */
export interface RunScenarioOptions {
  /** Window bounds per request (default: from each zoned policy's time zone). */
  windowBounds?: WindowBoundsFn | undefined;
  /**
   * Issue the commands between two "time passes" steps at once, without awaiting each answer,
   * and check the answers in issue order: a store must keep the order of decisions on one key
   * even when they share a round trip (default false: one command at a time).
   */
  concurrent?: boolean | undefined;
}

/** One command, ready to send: what to ask, and what to learn from the answer. */
interface Step {
  readonly request: StoreRequest;
  readonly label: string;
  readonly acquiredBy?: number;
}

/** Runs one generated scenario against a store; throws on the first answer that differs. */
export async function runScenario(
  store: Store,
  scenario: Scenario,
  time: TimeDriver,
  prefix: string,
  options: RunScenarioOptions = {},
): Promise<void> {
  const policies = compilePolicies(scenario.policies);
  const factoryOptions: RequestFactoryOptions = {
    partitionBy: scenario.keyMode === "object" ? "tenant" : undefined,
  };
  if (options.windowBounds !== undefined) factoryOptions.windowBounds = options.windowBounds;
  const factory = new RequestFactory(policies, prefix, store, time, factoryOptions);
  const keys = scenario.keys.map((k) => factory.plan.resolve(k));
  const concurrent = options.concurrent === true;
  // Concurrent decisions on different partitions may be decided in any order: only the clocks
  // of each key must not go backwards.
  const model = new ReferenceModel({ clockOrder: concurrent ? "perKey" : "global" });
  const leases: string[][] = keys.map(() => []);
  let counter = 0;

  const stepOf = (cmd: Exclude<Command, { t: "pass" }>, label: string): Step => {
    const key = keys[cmd.key]!;
    const build = (parts: RequestParts) => factory.build(key, parts);
    switch (cmd.t) {
      case "take":
        return { request: build({ op: "take", cost: cmd.cost }), label };
      case "peek":
        return { request: build({ op: "peek" }), label };
      case "refund":
        return { request: build({ op: "refund", cost: cmd.cost }), label };
      case "reset":
        return { request: build({ op: "reset" }), label };
      case "reconcile": {
        const now = time.now();
        const observations = policies.map((_p, i) => {
          const o = cmd.obs[i];
          if (o === null || o === undefined) return undefined;
          return {
            remaining: o.remaining ?? undefined,
            limit: o.limit ?? undefined,
            // Server resets are absolute times: anchor them near the store's clock.
            resetAtMs: o.resetInMs === null ? undefined : Math.max(0, now + o.resetInMs),
          };
        });
        const parts: RequestParts = { op: "reconcile", observations };
        if (cmd.learnedTtlMs !== null) parts.learnedLimitTtlMs = cmd.learnedTtlMs;
        return { request: build(parts), label };
      }
      case "acquire": {
        const leaseId = `lease-${counter++}`;
        const request = build({ op: "take", cost: 1, acquire: true, leaseId });
        return { request, label, acquiredBy: cmd.key };
      }
      case "release":
      case "renew": {
        const held = leases[cmd.key]!;
        // Now and then a lease this key never had: release is a no-op, renew fails.
        const leaseId = cmd.lease < held.length ? held[cmd.lease]! : `unknown-${cmd.lease}`;
        if (cmd.t === "release") return { request: build({ op: "release", leaseId }), label };
        const parts: RequestParts = { op: "renew", leaseId };
        if (cmd.ttlMs !== null) parts.leaseTtlMs = cmd.ttlMs;
        return { request: build(parts), label };
      }
    }
  };

  const learn = (step: Step, result: StoreResult) => {
    model.check(step.request, result, step.label);
    if (step.acquiredBy !== undefined && readAnswer(result, policies.length).allowed) {
      leases[step.acquiredBy]!.push(step.request.leaseId!);
    }
  };

  let group: Step[] = [];
  const flush = async () => {
    if (group.length === 0) return;
    const steps = group;
    group = [];
    const results = await Promise.all(steps.map((step) => store.execute(step.request)));
    steps.forEach((step, i) => {
      learn(step, results[i]!);
    });
  };

  for (const [n, cmd] of scenario.commands.entries()) {
    if (cmd.t === "pass") {
      await flush();
      await time.pass(cmd.ms);
      model.log.push(`#${n} pass ${cmd.ms} ms`);
      continue;
    }
    const step = stepOf(cmd, `#${n} ${describe(cmd)}`);
    if (concurrent) group.push(step);
    else learn(step, await store.execute(step.request));
  }
  await flush();
}

function describe(cmd: Command): string {
  const { t, ...rest } = cmd;
  return `${t} ${JSON.stringify(rest)}`;
}

/** Options of `compareWithReference`. */
export interface CompareOptions {
  /** The store under test, built by the caller. */
  store: Store;
  /**
   * How time passes between commands. Default: real sleeps of at most `maxPassMs` (a server
   * clock). With a clock the test sets (a test-clock adapter), pass a driver that moves it.
   */
  time?: TimeDriver;
  /** Longest "time passes" step, ms (default 40). */
  maxPassMs?: number;
  /**
   * Hours-long jumps, day windows in time zones, and runs started shortly before a zone's offset
   * change (needs a `time` the test moves; default false).
   */
  longTime?: boolean;
  /** The store's own layouts: each run takes one of these policy lists (default: generated). */
  limiters?: readonly (readonly Policy[])[];
  /** Kinds generated policies may have (default: `store.capabilities.kinds`, else every kind). */
  kinds?: readonly PolicyKind[];
  /** Window bounds per request (default: from each zoned policy's time zone, as the engine). */
  windowBounds?: WindowBoundsFn;
  /** fast-check runs (default 100) and most commands per run (default 60). */
  numRuns?: number;
  /** Most commands per generated scenario. */
  maxCommands?: number;
  /** Prefix of every state key (default: unique per run and process). */
  prefix?: string;
  /** fast-check seed, to replay a failure. */
  seed?: number;
  /** Issue the commands between time steps at once (see `RunScenarioOptions.concurrent`). */
  concurrent?: boolean;
  /**
   * Generated policies and commands at the largest values the schema accepts (see
   * `extremeScenarioArb`) instead of small ones; `limiters` and `longTime` are not used. Time
   * passes by up to a century: pass a `time` that moves a clock the test sets.
   */
  extreme?: boolean;
}

let runCounter = 0;
/** A key prefix no other run, process or test shares. */
export const uniquePrefix = (name: string): string =>
  `ref-${name}-${process.pid}-${Date.now().toString(36)}-${(runCounter++).toString(36)}`;

/**
 * The comparison harness: random sequences of every operation on random keys, each answer
 * checked against `evaluate()` at the clock the store reported. Call it inside a test.
 */
export async function compareWithReference(options: CompareOptions): Promise<void> {
  const { store, maxPassMs = 40, longTime = false, numRuns = 100 } = options;
  const time = options.time ?? realTime(maxPassMs);
  const kinds = options.kinds ?? store.capabilities.kinds;
  const arb = options.extreme
    ? extremeScenarioArb(kinds, options.maxCommands)
    : scenarioArb({
        maxPassMs,
        longTime,
        kinds,
        limiters: options.limiters,
        maxCommands: options.maxCommands,
      });
  const params: fc.Parameters<[Scenario]> = { numRuns };
  if (options.seed !== undefined) params.seed = options.seed;
  await fc.assert(
    fc.asyncProperty(arb, async (scenario) => {
      if (longTime) await jumpNearOffsetChange(scenario, time);
      await runScenario(store, scenario, time, options.prefix ?? uniquePrefix("cmp"), {
        windowBounds: options.windowBounds,
        concurrent: options.concurrent,
      });
    }),
    params,
  );
}

/** Moves a test clock (forward only) to hours before the next DST change of a zoned policy. */
export async function jumpNearOffsetChange(scenario: Scenario, time: TimeDriver): Promise<void> {
  const zoned = scenario.policies.find((p) => p.kind === "fixedWindow" && p.timeZone);
  if (zoned?.kind !== "fixedWindow" || zoned.timeZone === undefined) return;
  const now = time.now();
  const change = nextOffsetChange(zoned.timeZone, now);
  if (change !== undefined && change - scenario.leadMs > now) {
    await time.pass(change - scenario.leadMs - now);
  }
}
