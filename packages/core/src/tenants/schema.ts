import { z } from "zod";
import { policiesSchema } from "../policy/schema.js";

const overrideSchema = z
  .record(z.string(), z.unknown(), { error: "an override must be an object of policy fields" })
  .meta({ description: "Fields to patch in the named policy; nested objects merge." });

export const tenantEntrySchema = z
  .strictObject({
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
  })
  .meta({
    title: "Tenant",
    description: "A tenant's policy list: profile, then policies, then overrides.",
  });

export const tenantConfigSchema = z
  .strictObject({
    $schema: z.string().optional().meta({ description: "JSON Schema reference for editors." }),
    defaults: tenantEntrySchema.optional().meta({ description: "Applied first to every tenant." }),
    tenants: z
      .record(z.string(), tenantEntrySchema, {
        error: "tenants must be an object keyed by tenant id",
      })
      .meta({ description: "Tenants by id." }),
  })
  .meta({ title: "sluice tenant configuration" });

export type TenantEntry = z.output<typeof tenantEntrySchema>;
export type TenantConfig = z.output<typeof tenantConfigSchema>;

export const TOP_KEYS = ["$schema", "defaults", "tenants"] as const;
export const ENTRY_KEYS = ["profile", "policies", "overrides"] as const;
