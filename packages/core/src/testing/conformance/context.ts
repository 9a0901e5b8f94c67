import { compilePolicies } from "../../policy/compile.js";
import type { Policy, PolicyKind } from "../../policy/schema.js";
import { readAnswer, type StoreAnswer } from "../../store/answer.js";
import type { Store } from "../../store/contract.js";
import { ReferenceModel, RequestFactory, type TimeDriver, type WindowBoundsFn } from "../model.js";
import { uniquePrefix } from "../run.js";

/** The groups of the conformance suite, each in its own file of `testing/conformance/`. */
export type ConformanceGroup =
  | "reference"
  | "takesAndPeeks"
  | "refundsReconcileReset"
  | "policyChanges"
  | "leases"
  | "timeZones"
  | "expiry";

/**
 * What every group's tests share: the store (built in `beforeAll`), the clock, and helpers that
 * build requests like the limiter and check every answer against the reference math.
 */
export class ConformanceContext {
  /** The store under test (set before each test). */
  store!: Store;
  /** "injectable": the suite's fake clock; "server": real time. Known once the store is built. */
  mode: "injectable" | "server" = "injectable";
  /** The injectable clock's current time (epoch ms), moved by `time`. */
  fakeNow: number;
  /** Moves time: the fake clock, or real sleeps for a server clock. */
  readonly time: TimeDriver;
  /**
   * A server clock's lead over this process's (ms), learned once the store is built: the suite
   * reads times on the store's clock, wherever this host's clock is.
   */
  serverOffsetMs = 0;

  constructor(
    readonly name: string,
    readonly numRuns: number,
    /** Server-clock mode: longest real sleep of one "time passes" step. */
    readonly timeScaleMs: number,
    epochMs: number,
  ) {
    this.fakeNow = epochMs;
    this.time = {
      now: () => (this.mode === "injectable" ? this.fakeNow : Date.now() + this.serverOffsetMs),
      pass: async (ms) => {
        if (this.mode === "injectable") this.fakeNow += ms;
        else if (ms > 0) await new Promise((r) => setTimeout(r, Math.min(ms, timeScaleMs)));
      },
    };
  }

  /** Learns `serverOffsetMs` from one peek (a server clock's answer carries its now). */
  async learnServerClock(): Promise<void> {
    if (this.mode === "injectable") return;
    const f = this.limiter([{ kind: "fixedWindow", name: "clock", limit: 1, window: "1m" }]);
    const sentAt = Date.now();
    const r = await this.store.execute(f.build(f.plan.resolve("clock"), { op: "peek", cost: 1 }));
    // Read halfway through the round trip.
    this.serverOffsetMs = readAnswer(r, 1).nowMs - Math.round((sentAt + Date.now()) / 2);
  }

  /** Whether the store decides policies of `kind` (`capabilities.kinds`; absent: every kind). */
  supports(...kinds: PolicyKind[]): boolean {
    const declared = this.store.capabilities.kinds;
    return declared === undefined || kinds.every((k) => declared.includes(k));
  }

  /** A limiter's request builder under a key prefix of its own. */
  limiter(policies: Policy[], windowBounds?: WindowBoundsFn): RequestFactory {
    return new RequestFactory(
      compilePolicies(policies),
      uniquePrefix(this.name),
      this.store,
      this.time,
      windowBounds === undefined ? {} : { windowBounds },
    );
  }

  /**
   * Request builders for successive versions of one limiter's policies (a reload, a redeploy):
   * they share one key prefix, so a policy that keeps its name keeps its state.
   */
  limiterVersions(...versions: Policy[][]): RequestFactory[] {
    const prefix = uniquePrefix(this.name);
    return versions.map(
      (policies) => new RequestFactory(compilePolicies(policies), prefix, this.store, this.time),
    );
  }

  /** A fresh reference model bound to the store: `apply` executes and checks. */
  model(): BoundModel {
    return new BoundModel(this.store);
  }
}

/** A reference model that executes on one store and hands back typed answers. */
export class BoundModel {
  /** The reference model the store is held to. */
  readonly reference = new ReferenceModel();
  constructor(private readonly store: Store) {}

  /**
   * Applies one request to the store under test, checked against the reference model; returns the
   * store's answer.
   */
  async apply(
    factory: RequestFactory,
    request: Parameters<RequestFactory["build"]>[1],
    key: string | Record<string, string> = "k",
    label?: string,
  ): Promise<StoreAnswer> {
    const r = await this.reference.apply(
      this.store,
      factory.build(factory.plan.resolve(key), request),
      label ?? `${request.op}${request.leaseId === undefined ? "" : ` ${request.leaseId}`}`,
    );
    return readAnswer(r, factory.policies.length);
  }
}

/** Fires `n` decisions at once on one key (no model: they race); returns their answers. */
export async function burst(
  ctx: ConformanceContext,
  factory: RequestFactory,
  n: number,
  acquire = false,
): Promise<StoreAnswer[]> {
  const key = factory.plan.resolve("hot-key");
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      ctx.store.execute(
        factory.build(
          key,
          acquire
            ? { op: "take", cost: 1, acquire: true, leaseId: `l${i}` }
            : { op: "take", cost: 1 },
        ),
      ),
    ),
  );
  return results.map((r) => readAnswer(r, factory.policies.length));
}

export const admitted = (answers: readonly StoreAnswer[]): number =>
  answers.filter((a) => a.allowed).length;
