import fc from "fast-check";
import type { Policy, PolicyKind } from "../policy/schema.js";

/** Generated inputs of one model-based run. */
export interface Scenario {
  /** The policies under test. */
  readonly policies: Policy[];
  /** "string": string keys, unscoped policies; "object": `{ tenant, user }` keys, random scopes. */
  readonly keyMode: "string" | "object";
  /** The four user keys of the run (strings, or `{ tenant, user }` objects), all distinct. */
  readonly keys: readonly (string | Readonly<Record<string, string>>)[];
  /** The commands to run, in order. */
  readonly commands: Command[];
  /** Fake-clock mode: how long before a DST change of a zoned policy the run starts. */
  readonly leadMs: number;
}

/** One step of a scenario: a store call, or time passing. */
export type Command =
  | { readonly t: "take"; readonly key: number; readonly cost: number }
  | { readonly t: "peek"; readonly key: number }
  | { readonly t: "refund"; readonly key: number; readonly cost: number }
  | {
      readonly t: "reconcile";
      readonly key: number;
      readonly obs: readonly (ObservationSpec | null)[];
      /** Learned-limit ttl of this reconcile (null: the factory's default). */
      readonly learnedTtlMs: number | null;
    }
  | { readonly t: "acquire"; readonly key: number }
  | { readonly t: "release"; readonly key: number; readonly lease: number }
  | {
      readonly t: "renew";
      readonly key: number;
      readonly lease: number;
      readonly ttlMs: number | null;
    }
  | { readonly t: "reset"; readonly key: number }
  | { readonly t: "pass"; readonly ms: number };

/** A reconcile observation in a generated scenario (null: field absent). */
export interface ObservationSpec {
  /** Remaining the server reports, or null. */
  readonly remaining: number | null;
  /** Limit the server reports, or null. */
  readonly limit: number | null;
  /** Reset, relative to now (ms), or null. */
  readonly resetInMs: number | null;
}

/** Fixed keys with the characters that structure state keys, and non-ASCII text. */
export const STRING_KEYS = ["b:{c}", "用户"] as const;
export const OBJECT_KEYS = [
  { tenant: "acme", user: "ann" },
  { tenant: "ü=,%", user: "z" },
] as const;

/**
 * Generated key text: structural characters, escape look-alikes and any Unicode grapheme. Not
 * lone surrogates or NUL, which no UTF-8 server store (Redis strings, PostgreSQL text) can hold.
 */
const keyTextArb = fc.string({
  unit: fc.oneof(
    fc.constantFrom(":", "{", "}", "=", ",", "%", "%3A", "%7B"),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }).filter((c) => !c.includes("\0")),
  ),
  minLength: 1,
  maxLength: 5,
});

/** Two fixed keys and two generated ones; object keys share a tenant or a user across keys. */
export const keysArb = (keyMode: "string" | "object") =>
  keyMode === "string"
    ? fc
        .uniqueArray(keyTextArb, { minLength: 2, maxLength: 2 })
        .filter((ks) => ks.every((k) => !(STRING_KEYS as readonly string[]).includes(k)))
        .map((ks): Scenario["keys"] => [...STRING_KEYS, ...ks])
    : fc
        .tuple(
          keyTextArb.filter((u) => u !== "ann"),
          keyTextArb.filter((t) => t !== "acme"),
        )
        .map(([user, tenant]): Scenario["keys"] => [
          ...OBJECT_KEYS,
          { tenant: "acme", user },
          { tenant, user: "ann" },
        ]);

const ms = (min: number, max: number) => fc.integer({ min, max });

const policyArb = (
  name: string,
  keyMode: "string" | "object",
  longTime: boolean,
  allowed: readonly PolicyKind[],
): fc.Arbitrary<Policy> => {
  const scope =
    keyMode === "object"
      ? fc.constantFrom<(string[] | undefined)[]>(
          undefined,
          ["tenant"],
          ["user"],
          ["tenant", "user"],
        )
      : fc.constant(undefined);
  const withScope = <T extends object>(p: fc.Arbitrary<T>) =>
    fc.tuple(p, scope).map(([policy, s]) => (s === undefined ? policy : { ...policy, scope: s }));
  const kinds: [PolicyKind, fc.Arbitrary<Policy>][] = [
    [
      "tokenBucket",
      withScope(
        fc.record({
          kind: fc.constant("tokenBucket" as const),
          name: fc.constant(name),
          capacity: fc.integer({ min: 1, max: 5 }),
          refill: fc.record({ tokens: fc.integer({ min: 1, max: 3 }), every: ms(7, 90) }),
        }),
      ),
    ],
    [
      "pool",
      withScope(
        fc.record({
          kind: fc.constant("pool" as const),
          name: fc.constant(name),
          capacity: fc.integer({ min: 1, max: 5 }),
          refill: fc.record({ tokens: fc.integer({ min: 1, max: 2 }), every: ms(5, 60) }),
        }),
      ),
    ],
    [
      "fixedWindow",
      withScope(
        fc.record({
          kind: fc.constant("fixedWindow" as const),
          name: fc.constant(name),
          limit: fc.integer({ min: 1, max: 5 }),
          window: ms(10, 120),
          align: fc.constantFrom("calendar" as const, "firstUse" as const),
        }),
      ),
    ],
    [
      "slidingWindow",
      withScope(
        fc
          .record({
            kind: fc.constant("slidingWindow" as const),
            name: fc.constant(name),
            limit: fc.integer({ min: 1, max: 5 }),
            window: ms(10, 120),
            slots: fc.integer({ min: 1, max: 8 }),
          })
          .map(({ slots, ...p }) => ({
            ...p,
            precision: Math.max(1, Math.floor(p.window / slots)),
          })),
      ),
    ],
    [
      "concurrency",
      withScope(
        fc.record({
          kind: fc.constant("concurrency" as const),
          name: fc.constant(name),
          limit: fc.integer({ min: 1, max: 3 }),
          leaseTtl: ms(10, 150),
        }),
      ),
    ],
  ];
  // Calendar days in a zone with DST; only worth it when the clock can jump hours.
  if (longTime) {
    kinds.push([
      "fixedWindow",
      withScope(
        fc.record({
          kind: fc.constant("fixedWindow" as const),
          name: fc.constant(name),
          limit: fc.integer({ min: 1, max: 5 }),
          window: fc.constant("1d"),
          timeZone: fc.constantFrom("America/New_York", "Europe/London", "Asia/Kolkata"),
        }),
      ),
    ]);
  }
  return fc.oneof(...kinds.filter(([k]) => allowed.includes(k)).map(([, arb]) => arb));
};

const observationArb: fc.Arbitrary<ObservationSpec | null> = fc.option(
  fc.record({
    remaining: fc.option(fc.integer({ min: 0, max: 6 })),
    limit: fc.option(fc.integer({ min: 1, max: 7 })),
    resetInMs: fc.option(fc.integer({ min: -20, max: 300 })),
  }),
  { freq: 2 },
);

const commandArb = (
  maxPassMs: number,
  longTime: boolean,
  policyCount: number,
): fc.Arbitrary<Command> => {
  const key = fc.integer({ min: 0, max: 3 });
  const pass = longTime
    ? fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0, max: maxPassMs }) },
        { weight: 1, arbitrary: fc.integer({ min: 3_600_000, max: 30 * 3_600_000 }) },
      )
    : fc.integer({ min: 0, max: maxPassMs });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        t: fc.constant("take" as const),
        key,
        cost: fc.integer({ min: 0, max: 7 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("peek" as const), key }) },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("refund" as const),
        key,
        cost: fc.integer({ min: 1, max: 3 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("reconcile" as const),
        key,
        obs: fc.array(observationArb, { minLength: policyCount, maxLength: policyCount }),
        // Short ttls lapse within a run, long ones outlive it.
        learnedTtlMs: fc.option(fc.constantFrom(50, 150, 10_000), { freq: 2 }),
      }),
    },
    { weight: 3, arbitrary: fc.record({ t: fc.constant("acquire" as const), key }) },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant("release" as const), key, lease: fc.nat(6) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("renew" as const),
        key,
        lease: fc.nat(6),
        ttlMs: fc.option(fc.integer({ min: 5, max: 200 })),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant("reset" as const), key }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant("pass" as const), ms: pass }) },
  );
};

const ALL_KINDS: readonly PolicyKind[] = [
  "tokenBucket",
  "pool",
  "fixedWindow",
  "slidingWindow",
  "concurrency",
];

/** Options of the scenario generator. */
export interface ScenarioOptions {
  /** Longest "time passes" step (ms): a real sleep with a server clock. */
  maxPassMs: number;
  /** Adds day windows in time zones and jumps of hours (only with a clock the test moves). */
  longTime: boolean;
  /** Kinds generated policies may have (default every kind; see `StoreCapabilities.kinds`). */
  kinds?: readonly PolicyKind[] | undefined;
  /**
   * A store's own layouts: each run takes one of these policy lists instead of generated ones
   * (scoped policies get object keys; unscoped ones string or object keys).
   */
  limiters?: readonly (readonly Policy[])[] | undefined;
  /** Most commands per run (default 60). */
  maxCommands?: number | undefined;
}

const hasScope = (ps: readonly Policy[]) => ps.some((p) => p.scope !== undefined);

/** Random policy sets (or one of `limiters`) and command sequences. */
export function scenarioArb(options: ScenarioOptions): fc.Arbitrary<Scenario> {
  const { maxPassMs, longTime, kinds = ALL_KINDS, limiters, maxCommands = 60 } = options;
  const setup =
    limiters === undefined || limiters.length === 0
      ? fc.constantFrom("string" as const, "object" as const).chain((keyMode) =>
          fc
            .integer({ min: 1, max: 4 })
            .chain((n) =>
              fc.tuple(
                ...Array.from({ length: n }, (_, i) =>
                  policyArb(`p${i}`, keyMode, longTime, kinds),
                ),
              ),
            )
            .map((policies) => ({ keyMode, policies: policies as Policy[] })),
        )
      : fc
          .constantFrom(...limiters)
          .chain((policies) =>
            (hasScope(policies)
              ? fc.constant("object" as const)
              : fc.constantFrom("string" as const, "object" as const)
            ).map((keyMode) => ({ keyMode, policies: [...policies] })),
          );
  return setup.chain(({ keyMode, policies }) =>
    fc.record({
      keyMode: fc.constant(keyMode),
      keys: keysArb(keyMode),
      policies: fc.constant(policies),
      commands: fc.array(commandArb(maxPassMs, longTime, policies.length), {
        minLength: 1,
        maxLength: maxCommands,
        size: "max",
      }),
      leadMs: fc.integer({ min: 0, max: 30 * 3_600_000 }),
    }),
  );
}
