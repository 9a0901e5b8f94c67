/**
 * The configuration formats written in zod: they generate the published JSON Schema
 * (`@sluice/core/tenants.schema.json`) and the field reference of docs/configuration.md, and they
 * are the oracle the hand-written validators (policy/schema.ts, tenants/schema.ts) are tested
 * against. Never imported at run time: zod took ~38 ms of a cold `require("@sluice/core")`.
 */
import { z } from "zod";
import { DURATION_PATTERN, durationToMs, MAX_DURATION_MS } from "../duration.js";
import { refillBoundIssue } from "../policy/refill-bounds.js";
import { expected } from "../policy/validate.js";
import { isValidTimeZone } from "../time-zone.js";

/** Our wording for an object of the wrong type; other issues keep the defaults. */
const objectError = {
  error: (iss: { code?: string; input?: unknown }) =>
    iss.code === "invalid_type" ? expected("object", iss.input) : undefined,
};

const DAY_MS = 86_400_000;

/**
 * A duration, checked by `durationToMs` like the run-time checks; the JSON Schema shows its format
 * and range to editors.
 */
export const durationSchema = (field: string) =>
  z
    .union([z.number(), z.string()], { error: (iss) => durationMessage(iss.input, field) })
    .superRefine((v, ctx) => {
      const ms = durationToMs(v, field);
      if (typeof ms === "string") ctx.addIssue({ code: "custom", message: ms, input: v });
    })
    .meta({
      description:
        'A duration from 1 ms to 100 years: whole milliseconds, or a string `<n>ms|s|m|h|d` ("500ms", "1m", "1d").',
      anyOf: [
        { type: "integer", minimum: 1, maximum: MAX_DURATION_MS },
        { type: "string", pattern: DURATION_PATTERN.source },
      ],
    });

function durationMessage(input: unknown, field: string): string {
  const ms = durationToMs(input, field);
  return typeof ms === "string" ? ms : `${field} must be a duration`;
}

const positiveInt = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int({ error: `${what} must be a whole number` })
    .positive({ error: `${what} must be at least 1` })
    .max(Number.MAX_SAFE_INTEGER, { error: `${what} is too large` });

const nameSchema = z
  .string({ error: "name must be a string" })
  .min(1, { error: "name must not be empty" })
  .max(200, { error: "name must be at most 200 characters" })
  .meta({ description: "Unique within its limiter; used in Decision.blockedBy and in overrides." });

const scopeSchema = z
  .array(
    z
      .string({ error: (iss) => expected("string", iss.input) })
      .min(1, { error: "scope fields must be non-empty strings" }),
    {
      error: "scope must be an array of key field names",
    },
  )
  .min(1, { error: "scope must name at least one key field" })
  .meta({
    description:
      'Key fields this policy is counted by (e.g. ["tenant"]); without it, all fields of the key.',
  });

const refillSchema = z.strictObject(
  {
    tokens: positiveInt("refill.tokens").meta({ description: "Tokens gained per `every`." }),
    every: durationSchema("refill.every"),
  },
  objectError,
);

/** A bucket or pool stays within what every store computes exactly (policy/refill-bounds.ts). */
function refillBound(
  kind: "tokenBucket" | "pool",
  p: { capacity: number; refill: { tokens: number; every: number | string } },
  ctx: z.RefinementCtx,
): void {
  const every = durationValue(p.refill.every);
  if (every === undefined) return;
  const message = refillBoundIssue(kind, p.capacity, p.refill.tokens, every);
  if (message !== undefined) ctx.addIssue({ code: "custom", path: ["capacity"], message });
}

export const tokenBucketSchema = z
  .strictObject({
    kind: z.literal("tokenBucket"),
    name: nameSchema,
    scope: scopeSchema.optional(),
    capacity: positiveInt("capacity").meta({
      description: "Most tokens the bucket holds; it starts full.",
    }),
    refill: refillSchema.meta({ description: "Continuous refill rate: `tokens` per `every`." }),
  })
  .superRefine((p, ctx) => refillBound("tokenBucket", p, ctx))
  .meta({
    title: "tokenBucket",
    description: "Starts full; refills continuously, never above capacity.",
  });

export const poolSchema = z
  .strictObject({
    kind: z.literal("pool"),
    name: nameSchema,
    scope: scopeSchema.optional(),
    capacity: positiveInt("capacity").meta({ description: "Size of the pool; it starts full." }),
    refill: refillSchema.meta({
      description:
        "Whole steps: `tokens` per `every`, counted from when it first dropped below capacity.",
    }),
  })
  .superRefine((p, ctx) => refillBound("pool", p, ctx))
  .meta({ title: "pool", description: "Replenishing pool that refills in whole steps." });

export const fixedWindowSchema = z
  .strictObject({
    kind: z.literal("fixedWindow"),
    name: nameSchema,
    scope: scopeSchema.optional(),
    limit: positiveInt("limit").meta({ description: "Most admitted per window." }),
    window: durationSchema("window"),
    timeZone: z
      .string({ error: "timeZone must be an IANA time zone name" })
      .refine(isValidTimeZone, {
        error: 'timeZone is not a known IANA time zone (e.g. "Europe/London")',
      })
      .optional()
      .meta({
        description: "IANA zone; windows then start at local midnight (whole-day windows only).",
      }),
    align: z
      .enum(["calendar", "firstUse"], { error: 'align must be "calendar" or "firstUse"' })
      .optional()
      .meta({
        description:
          "calendar (default): aligned to the epoch or local midnight; firstUse: starts at the first admission.",
      }),
  })
  .superRefine((p, ctx) => {
    if (p.timeZone === undefined) return;
    if (p.align === "firstUse") {
      ctx.addIssue({
        code: "custom",
        path: ["timeZone"],
        message: 'timeZone cannot be combined with align "firstUse"',
      });
    }
    const ms = durationValue(p.window);
    if (ms !== undefined && ms % DAY_MS !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["window"],
        message: "window must be a whole number of days when timeZone is set",
      });
    }
  })
  .meta({ title: "fixedWindow", description: "At most `limit` per window." });

export const slidingWindowSchema = z
  .strictObject({
    kind: z.literal("slidingWindow"),
    name: nameSchema,
    scope: scopeSchema.optional(),
    limit: positiveInt("limit").meta({ description: "Most admitted in any span of `window`." }),
    window: durationSchema("window"),
    precision: durationSchema("precision")
      .optional()
      .meta({ description: "Slot size (default window/60, at least 1 ms)." }),
  })
  .superRefine((p, ctx) => {
    const w = durationValue(p.window);
    const pr = p.precision === undefined ? undefined : durationValue(p.precision);
    if (w !== undefined && pr !== undefined && pr > w) {
      ctx.addIssue({
        code: "custom",
        path: ["precision"],
        message: "precision must not exceed window",
      });
    }
  })
  .meta({
    title: "slidingWindow",
    description: "At most `limit` admitted in any half-open span of `window`.",
  });

export const concurrencySchema = z
  .strictObject({
    kind: z.literal("concurrency"),
    name: nameSchema,
    scope: scopeSchema.optional(),
    limit: positiveInt("limit").meta({ description: "Most leases held at once." }),
    leaseTtl: durationSchema("leaseTtl"),
  })
  .meta({
    title: "concurrency",
    description: "Semaphore of leases that expire unless released or renewed.",
  });

const POLICY_KINDS = ["tokenBucket", "pool", "fixedWindow", "slidingWindow", "concurrency"];

export const policySchema = z.discriminatedUnion(
  "kind",
  [tokenBucketSchema, poolSchema, fixedWindowSchema, slidingWindowSchema, concurrencySchema],
  { error: () => `kind must be one of ${POLICY_KINDS.map((k) => `"${k}"`).join(", ")}` },
);

/** Shape of a policy list; unique names are checked by `duplicateNames` (see below). */
export const policiesSchema = z.array(policySchema, {
  error: "policies must be an array of policy objects",
});

function durationValue(d: number | string): number | undefined {
  const ms = durationToMs(d);
  return typeof ms === "number" ? ms : undefined;
}

const overrideSchema = z
  .record(z.string(), z.unknown(), { error: "an override must be an object of policy fields" })
  .meta({ description: "Fields to patch in the named policy; nested objects merge." });

export const tenantEntrySchema = z
  .strictObject(
    {
      profile: z
        .string({ error: "profile must be a string" })
        .min(1, { error: "profile must not be empty" })
        .optional()
        .meta({ description: 'Name of a profile, e.g. "keap:pat".' }),
      policies: policiesSchema
        .optional()
        .meta({ description: "Policies added after the profile; same name replaces." }),
      overrides: z
        .record(z.string(), overrideSchema, {
          error: "overrides must be an object keyed by policy name",
        })
        .optional()
        .meta({ description: "Patches keyed by policy name; may not change kind, name or scope." }),
    },
    objectError,
  )
  .meta({
    title: "Tenant",
    description: "A tenant's policy list: profile, then policies, then overrides.",
  });

export const tenantConfigSchema = z
  .strictObject(
    {
      $schema: z
        .string({ error: (iss) => expected("string", iss.input) })
        .optional()
        .meta({ description: "JSON Schema reference for editors." }),
      defaults: tenantEntrySchema
        .optional()
        .meta({ description: "Applied first to every tenant." }),
      tenants: z
        .record(z.string(), tenantEntrySchema, {
          error: "tenants must be an object keyed by tenant id",
        })
        .meta({ description: "Tenants by id." }),
    },
    objectError,
  )
  .meta({ title: "sluice tenant configuration" });
