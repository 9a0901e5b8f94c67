import { checkPolicies, type Policy } from "../policy/schema.js";
import {
  expected,
  isPlainObject,
  lengthOf,
  objectIssue,
  type SchemaIssue,
  type Validator,
  validator,
} from "../policy/validate.js";

// Hand-written like the policy checks; tenants/zod-spec.ts describes the same format for the JSON
// Schema, and a test holds the two to the same issues.

/** A tenant's policy list: profile, then policies, then overrides. */
export type TenantEntry = {
  /** Name of a profile, e.g. `"keap:pat"`. */
  profile?: string | undefined;
  /** Policies added after the profile; same name replaces. */
  policies?: Policy[] | undefined;
  /** Patches keyed by policy name; may not change kind, name or scope. Nested objects merge. */
  overrides?: Record<string, Record<string, unknown>> | undefined;
};
/** A per-tenant configuration file, as `parseTenantConfig` returns it. */
export type TenantConfig = {
  /** JSON Schema reference for editors. */
  $schema?: string | undefined;
  /** Applied first to every tenant. */
  defaults?: TenantEntry | undefined;
  /** Tenants by id. */
  tenants: Record<string, TenantEntry>;
};

export const TOP_KEYS = ["$schema", "defaults", "tenants"] as const;
export const ENTRY_KEYS = ["profile", "policies", "overrides"] as const;

type Path = readonly PropertyKey[];

function checkEntry(v: unknown, at: Path, issues: SchemaIssue[]): void {
  if (!isPlainObject(v)) {
    issues.push({ code: "invalid_type", path: at, message: expected("object", v), input: v });
    return;
  }
  const { profile, policies, overrides } = v;
  if (profile !== undefined) {
    const path = [...at, "profile"];
    if (typeof profile !== "string") {
      const message = "profile must be a string";
      issues.push({ code: "invalid_type", path, message, input: profile });
    }
    if ((lengthOf(profile) ?? 1) < 1) {
      issues.push({
        code: "too_small",
        path,
        message: "profile must not be empty",
        continue: true,
      });
    }
  }
  if (policies !== undefined) checkPolicies(policies, [...at, "policies"], issues);
  if (overrides !== undefined) {
    const path = [...at, "overrides"];
    if (!isPlainObject(overrides)) {
      const message = "overrides must be an object keyed by policy name";
      issues.push({ code: "invalid_type", path, message, input: overrides });
    } else {
      for (const [name, patch] of Object.entries(overrides)) {
        if (!isPlainObject(patch)) {
          const message = "an override must be an object of policy fields";
          issues.push({ code: "invalid_type", path: [...path, name], message, input: patch });
        }
      }
    }
  }
  objectIssue(v, ENTRY_KEYS, at, issues);
}

/** The top level, with `tenants` left to the caller (which checks identical entries once). */
function checkShell(v: unknown, at: Path, issues: SchemaIssue[]): void {
  if (!isPlainObject(v)) {
    issues.push({ code: "invalid_type", path: at, message: expected("object", v), input: v });
    return;
  }
  const { $schema, defaults } = v;
  if ($schema !== undefined && typeof $schema !== "string") {
    const message = expected("string", $schema);
    issues.push({ code: "invalid_type", path: [...at, "$schema"], message, input: $schema });
  }
  if (defaults !== undefined) checkEntry(defaults, [...at, "defaults"], issues);
}

function checkConfig(v: unknown, at: Path, issues: SchemaIssue[]): void {
  checkShell(v, at, issues);
  if (!isPlainObject(v)) return;
  const tenants = v.tenants;
  if (!isPlainObject(tenants)) {
    const message = "tenants must be an object keyed by tenant id";
    issues.push({ code: "invalid_type", path: [...at, "tenants"], message, input: tenants });
  } else {
    for (const [id, e] of Object.entries(tenants)) checkEntry(e, [...at, "tenants", id], issues);
  }
  objectIssue(v, TOP_KEYS, at, issues);
}

export const tenantEntrySchema: Validator<TenantEntry> = validator(checkEntry);
export const tenantConfigSchema: Validator<TenantConfig> = validator(checkConfig);
/** `tenantConfigSchema` without the tenant entries, which `parseTenantConfig` checks one by one. */
export const tenantShellSchema: Validator<TenantConfig> = validator((v, at, issues) => {
  checkShell(v, at, issues);
  if (isPlainObject(v)) objectIssue(v, TOP_KEYS, at, issues);
});
