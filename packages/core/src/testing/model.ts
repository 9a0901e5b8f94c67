import { KeyPlan, type ResolvedKey } from "../keys.js";
import { evaluate, type PolicyStateRecord } from "../math/evaluate.js";
import { type CompiledPolicy, compilePolicies } from "../policy/compile.js";
import type { Store, StoreObservation, StoreRequest, StoreResult } from "../store.js";
import { zoneWindowBounds } from "../time-zone.js";
import type { Command, Scenario } from "./scenario.js";

const DAY_MS = 86_400_000;

/** What drives time during a run: a fake clock the suite moves, or real sleeps. */
export interface TimeDriver {
  /** The client's idea of now (for time-zone window bounds). */
  now(): number;
  pass(ms: number): Promise<void>;
}

export interface RequestParts {
  op: StoreRequest["op"];
  cost?: number;
  acquire?: boolean;
  leaseId?: string;
  leaseTtlMs?: number;
  observations?: (StoreObservation | undefined)[];
}

/** Builds requests the way the limiter does: KeyPlan keys, time-zone bounds, fixed learned TTL. */
export class RequestFactory {
  readonly plan: KeyPlan;

  constructor(
    readonly policies: readonly CompiledPolicy[],
    prefix: string,
    partitionBy: string | undefined,
    store: Store,
    private readonly time: TimeDriver,
    readonly learnedLimitTtlMs = 250,
  ) {
    this.plan = new KeyPlan(prefix, policies, partitionBy, store.capabilities.requiresPartition);
  }

  build(resolved: ResolvedKey, parts: RequestParts): StoreRequest {
    const zoned = this.policies.some((p) => p.kind === "fixedWindow" && p.timeZone !== undefined);
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
      learnedLimitTtlMs: this.learnedLimitTtlMs,
      windowBounds: zoned
        ? this.policies.map((p) =>
            p.kind === "fixedWindow" && p.timeZone !== undefined
              ? zoneWindowBounds(p.timeZone, p.windowMs / DAY_MS, this.time.now())
              : undefined,
          )
        : undefined,
    };
  }
}

/** Keeps the reference state of every key and checks each store answer against `evaluate()`. */
export class Model {
  private readonly states = new Map<string, PolicyStateRecord>();
  private lastNow = Number.NEGATIVE_INFINITY;
  readonly log: string[] = [];

  constructor(private readonly store: Store) {}

  async apply(request: StoreRequest, label: string): Promise<StoreResult> {
    const stored = request.keys.map((k) => this.states.get(k));
    const result = await this.store.execute(request);
    const actual = Array.from(result);
    const now = actual[1]!;
    this.log.push(`${label} @${now} -> ${actual.join(",")}`);
    if (!(now >= this.lastNow)) {
      throw new Error(
        `store clock went backwards: ${now} after ${this.lastNow}\n${this.log.join("\n")}`,
      );
    }
    this.lastNow = now;
    const expected = evaluate(request, stored, now);
    if (
      actual.length !== expected.result.length ||
      actual.some((v, i) => v !== expected.result[i])
    ) {
      throw new Error(
        [
          `store result differs from the reference math for ${label}`,
          `  store:     [${actual.join(", ")}]`,
          `  reference: [${expected.result.join(", ")}]`,
          `  policies:  ${JSON.stringify(request.policies)}`,
          `  keys:      ${JSON.stringify(request.keys)}`,
          `  state before: ${JSON.stringify(stored, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v))}`,
          "  history:",
          ...this.log.map((l) => `    ${l}`),
        ].join("\n"),
      );
    }
    if (expected.write) {
      request.keys.forEach((k, i) => {
        const s = expected.states[i];
        if (s === undefined) this.states.delete(k);
        else this.states.set(k, s);
      });
    }
    return result;
  }
}

/** Runs one generated scenario against a store; throws on the first mismatch. */
export async function runScenario(
  store: Store,
  scenario: Scenario,
  time: TimeDriver,
  prefix: string,
): Promise<void> {
  const policies = compilePolicies(scenario.policies);
  const factory = new RequestFactory(
    policies,
    prefix,
    scenario.keyMode === "object" ? "tenant" : undefined,
    store,
    time,
  );
  const keys = scenario.keys.map((k) => factory.plan.resolve(k));
  const model = new Model(store);
  const leases: string[][] = keys.map(() => []);
  let counter = 0;
  for (const [n, cmd] of scenario.commands.entries()) {
    if (cmd.t === "pass") {
      await time.pass(cmd.ms);
      model.log.push(`#${n} pass ${cmd.ms} ms`);
      continue;
    }
    const key = keys[cmd.key]!;
    const label = `#${n} ${describe(cmd)}`;
    switch (cmd.t) {
      case "take":
        await model.apply(factory.build(key, { op: "take", cost: cmd.cost }), label);
        break;
      case "peek":
        await model.apply(factory.build(key, { op: "peek" }), label);
        break;
      case "refund":
        await model.apply(factory.build(key, { op: "refund", cost: cmd.cost }), label);
        break;
      case "reset":
        await model.apply(factory.build(key, { op: "reset" }), label);
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
        await model.apply(factory.build(key, { op: "reconcile", observations }), label);
        break;
      }
      case "acquire": {
        const leaseId = `lease-${counter++}`;
        const r = await model.apply(
          factory.build(key, { op: "take", cost: 1, acquire: true, leaseId }),
          label,
        );
        if (r[0] === 1) leases[cmd.key]!.push(leaseId);
        break;
      }
      case "release":
      case "renew": {
        const held = leases[cmd.key]!;
        // Now and then a lease this key never had: release is a no-op, renew fails.
        const leaseId = cmd.lease < held.length ? held[cmd.lease]! : `unknown-${cmd.lease}`;
        if (cmd.t === "release") {
          await model.apply(factory.build(key, { op: "release", leaseId }), label);
        } else {
          const parts: RequestParts = { op: "renew", leaseId };
          if (cmd.ttlMs !== null) parts.leaseTtlMs = cmd.ttlMs;
          await model.apply(factory.build(key, parts), label);
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
