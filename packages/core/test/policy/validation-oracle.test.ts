import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { policiesSchema } from "../../src/policy/schema.js";
import type { SchemaIssue } from "../../src/policy/validate.js";
import { tenantConfigSchema, tenantEntrySchema } from "../../src/tenants/schema.js";
import * as spec from "../../src/tenants/zod-spec.js";

// The run-time checks are hand-written; the zod description of the same format (which generates
// the JSON Schema) is the oracle: every input gets the same issues, in the same order.

interface Comparable {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: readonly string[];
}
const view = (issues: readonly SchemaIssue[]): Comparable[] =>
  issues.map((i) => ({
    code: i.code,
    path: [...i.path],
    message: i.message,
    ...(i.keys ? { keys: i.keys } : {}),
  }));
const outcome = (r: { success: boolean; error?: { issues: readonly SchemaIssue[] } }) =>
  r.success ? "valid" : view(r.error!.issues);

const junk = fc.constantFrom<unknown>(
  undefined,
  null,
  0,
  -1,
  1.5,
  -2.5,
  2 ** 60,
  -(2 ** 60),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "x",
  "1h",
  "5x",
  "1d",
  "0ms",
  "2d",
  "24h",
  true,
  [],
  [""],
  ["a"],
  [1, ""],
  {},
  { a: 1 },
  "Europe/London",
  "Nope/Nowhere",
  "calendar",
  "firstUse",
  "a".repeat(201),
);
const good = {
  kind: fc.constantFrom("tokenBucket", "pool", "fixedWindow", "slidingWindow", "concurrency"),
  name: fc.constantFrom("a", "daily"),
  scope: fc.constantFrom(["tenant"], ["a", "b"]),
  count: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(2 ** 40, 2 ** 52)),
  duration: fc.constantFrom(1, 1000, 86_400_000, "1s", "1m", "1d", "2d", "90m", "30ms"),
  timeZone: fc.constantFrom("Europe/London", "America/New_York"),
  align: fc.constantFrom("calendar", "firstUse"),
};
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: a }, junk);
const refill = fc.oneof(
  fc.record(
    { tokens: maybe(good.count), every: maybe(good.duration), extra: junk },
    { requiredKeys: [] },
  ),
  junk,
);
const policy = fc.oneof(
  fc.record(
    {
      kind: fc.oneof({ weight: 6, arbitrary: good.kind }, junk),
      name: maybe(good.name),
      scope: maybe(good.scope),
      capacity: maybe(good.count),
      limit: maybe(good.count),
      refill: fc.oneof({ weight: 3, arbitrary: refill }, junk),
      window: maybe(good.duration),
      precision: maybe(good.duration),
      leaseTtl: maybe(good.duration),
      timeZone: maybe(good.timeZone),
      align: maybe(good.align),
      limt: junk,
    },
    { requiredKeys: ["kind", "name"] },
  ),
  junk,
);
const policies = fc.oneof({ weight: 5, arbitrary: fc.array(policy, { maxLength: 3 }) }, junk);
const entry = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        profile: maybe(fc.constantFrom("keap:pat", "custom")),
        policies,
        overrides: fc.oneof(
          fc.dictionary(fc.constantFrom("a", "daily"), fc.oneof(fc.record({ limit: junk }), junk)),
          junk,
        ),
        polices: junk,
      },
      { requiredKeys: [] },
    ),
  },
  junk,
);
const config = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        $schema: maybe(fc.constant("./tenants.schema.json")),
        defaults: entry,
        tenants: fc.oneof(
          { weight: 5, arbitrary: fc.dictionary(fc.constantFrom("acme", "a.b", "beta"), entry) },
          junk,
        ),
        tenant: junk,
      },
      { requiredKeys: [] },
    ),
  },
  junk,
);

describe("hand-written configuration checks agree with the zod description", () => {
  it("policy lists", () => {
    fc.assert(
      fc.property(policies, (input) => {
        expect(outcome(policiesSchema.safeParse(input))).toEqual(
          outcome(spec.policiesSchema.safeParse(input) as never),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it("tenant entries", () => {
    fc.assert(
      fc.property(entry, (input) => {
        expect(outcome(tenantEntrySchema.safeParse(input))).toEqual(
          outcome(spec.tenantEntrySchema.safeParse(input) as never),
        );
      }),
      { numRuns: 1500 },
    );
  });

  it("whole tenant configurations", () => {
    fc.assert(
      fc.property(config, (input) => {
        expect(outcome(tenantConfigSchema.safeParse(input))).toEqual(
          outcome(spec.tenantConfigSchema.safeParse(input) as never),
        );
      }),
      { numRuns: 1500 },
    );
  });
});
