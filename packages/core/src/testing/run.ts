import fc from "fast-check";
import { compilePolicies } from "../policy/compile.js";
import type { Policy, PolicyKind } from "../policy/schema.js";
import { readAnswer } from "../store/answer.js";
import type { Store } from "../store/contract.js";
import { nextOffsetChange } from "./dst.js";
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

export interface RunScenarioOptions {
  /** Window bounds per request (default: from each zoned policy's time zone). */
  windowBounds?: WindowBoundsFn | undefined;
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
  const model = new ReferenceModel();
  let key = keys[0]!;
  const apply = (parts: RequestParts, label: string) =>
    model.apply(store, factory.build(key, parts), label);
  const leases: string[][] = keys.map(() => []);
  let counter = 0;
  for (const [n, cmd] of scenario.commands.entries()) {
    if (cmd.t === "pass") {
      await time.pass(cmd.ms);
      model.log.push(`#${n} pass ${cmd.ms} ms`);
      continue;
    }
    key = keys[cmd.key]!;
    const label = `#${n} ${describe(cmd)}`;
    switch (cmd.t) {
      case "take":
        await apply({ op: "take", cost: cmd.cost }, label);
        break;
      case "peek":
        await apply({ op: "peek" }, label);
        break;
      case "refund":
        await apply({ op: "refund", cost: cmd.cost }, label);
        break;
      case "reset":
        await apply({ op: "reset" }, label);
        break;
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
        await apply(parts, label);
        break;
      }
      case "acquire": {
        const leaseId = `lease-${counter++}`;
        const r = await apply({ op: "take", cost: 1, acquire: true, leaseId }, label);
        if (readAnswer(r, policies.length).allowed) leases[cmd.key]!.push(leaseId);
        break;
      }
      case "release":
      case "renew": {
        const held = leases[cmd.key]!;
        // Now and then a lease this key never had: release is a no-op, renew fails.
        const leaseId = cmd.lease < held.length ? held[cmd.lease]! : `unknown-${cmd.lease}`;
        if (cmd.t === "release") await apply({ op: "release", leaseId }, label);
        else {
          const parts: RequestParts = { op: "renew", leaseId };
          if (cmd.ttlMs !== null) parts.leaseTtlMs = cmd.ttlMs;
          await apply(parts, label);
        }
        break;
      }
    }
  }
}

function describe(cmd: Command): string {
  const { t, ...rest } = cmd;
  return `${t} ${JSON.stringify(rest)}`;
}

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
  maxCommands?: number;
  /** Prefix of every state key (default: unique per run and process). */
  prefix?: string;
  /** fast-check seed, to replay a failure. */
  seed?: number;
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
  const arb = scenarioArb({
    maxPassMs,
    longTime,
    kinds: options.kinds ?? store.capabilities.kinds,
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
