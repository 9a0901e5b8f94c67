import { ConfigError, type ConfigIssue } from "../errors.js";
import { closestName, optionsObject, unknownOptionIssues } from "../options-check.js";
import { policyKnownKeys } from "../policy/compile.js";
import { formatPath, toConfigIssues } from "../policy/issues.js";
import { duplicateNames } from "../policy/schema.js";
import type { SchemaIssue } from "../policy/validate.js";
import { buildPolicies, type Profiles, profilePolicies } from "./build.js";
import { checkProfiles } from "./profiles.js";
import {
  ENTRY_KEYS,
  type TenantConfig,
  type TenantEntry,
  TOP_KEYS,
  tenantEntrySchema,
  tenantShellSchema,
} from "./schema.js";

// Tenant entries are checked one by one below, and identical entries (most tenants share a handful
// of shapes) are validated once.
const shellSchema = tenantShellSchema;

function entryKnownKeys(
  path: readonly PropertyKey[],
  value: unknown,
): readonly string[] | undefined {
  return path.length === 0 ? ENTRY_KEYS : policyKnownKeys(path, value);
}

/** Options of `parseTenantConfig`. */
export interface ParseTenantConfigOptions {
  /** Known profiles; without them only the structure is checked. */
  profiles?: Profiles;
}

function knownKeys(path: readonly PropertyKey[], value: unknown): readonly string[] | undefined {
  if (path.length === 0) return TOP_KEYS;
  if (path.length === 1 && path[0] === "defaults") return ENTRY_KEYS;
  if (path.length === 2 && path[0] === "tenants") return ENTRY_KEYS;
  return policyKnownKeys(path, value);
}

/** Identical entries share a key: a bare `{ profile }` by its name, others with policies by their JSON. */
function cacheKey(e: unknown): string | undefined {
  if (e === null || typeof e !== "object") return undefined;
  let n = 0;
  for (const _ in e) n++;
  const { profile, policies } = e as { profile?: unknown; policies?: unknown };
  if (n === 1 && typeof profile === "string") return `p:${profile}`;
  if (policies === undefined) return undefined;
  try {
    return `j:${JSON.stringify(e)}`;
  } catch {
    return undefined; // not JSON (a BigInt, a cycle): checked on its own, and refused
  }
}

function checkParseOptions(input: unknown): ParseTenantConfigOptions {
  const options = optionsObject(input, "parseTenantConfig", true);
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(options, ["profiles"], issues);
  if (options.profiles !== undefined) checkProfiles(options.profiles, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return options as ParseTenantConfigOptions;
}

/** Validates a tenant configuration; throws one ConfigError listing every problem. */
export function parseTenantConfig(
  json: unknown,
  options: ParseTenantConfigOptions = {},
): TenantConfig {
  const { profiles } = checkParseOptions(options);
  const parsed = shellSchema.safeParse(json);
  const issues: ConfigIssue[] = parsed.success
    ? []
    : toConfigIssues(parsed.error.issues, [], knownKeys, json);
  const tenantsIn = (json as { tenants?: unknown } | null)?.tenants;
  if (tenantsIn !== null && typeof tenantsIn === "object" && !Array.isArray(tenantsIn)) {
    const seen = new Map<string, SchemaIssue[]>();
    for (const [id, e] of Object.entries(tenantsIn)) {
      // Policy lists are the costly part and are often repeated verbatim: validate each once.
      const key = cacheKey(e);
      let found = key === undefined ? undefined : seen.get(key);
      if (found === undefined) {
        const r = tenantEntrySchema.safeParse(e);
        found = r.success ? [] : r.error.issues;
        if (key !== undefined) seen.set(key, found);
      }
      if (found.length > 0)
        issues.push(...toConfigIssues(found, ["tenants", id], entryKnownKeys, e));
    }
  } else if (json !== null && typeof json === "object") {
    issues.push({
      path: "tenants",
      message:
        tenantsIn === undefined
          ? "tenants is required"
          : "tenants must be an object keyed by tenant id",
    });
  }
  const input = json as {
    defaults?: { policies?: unknown };
    tenants?: Record<string, { policies?: unknown }>;
  };
  const entries: [readonly PropertyKey[], { policies?: unknown } | undefined][] = [
    [["defaults"], input?.defaults],
  ];
  if (input?.tenants !== null && typeof input?.tenants === "object") {
    for (const [id, e] of Object.entries(input.tenants)) entries.push([["tenants", id], e]);
  }
  for (const [path, e] of entries) {
    if (e === null || typeof e !== "object") continue;
    for (const d of duplicateNames(e.policies)) {
      issues.push({ path: formatPath([...path, "policies", d.index, "name"]), message: d.message });
    }
    const profile = (e as { profile?: unknown }).profile;
    if (
      profiles !== undefined &&
      typeof profile === "string" &&
      !Object.hasOwn(profiles, profile)
    ) {
      const hint = closestName(profile, Object.keys(profiles));
      issues.push({
        path: formatPath([...path, "profile"]),
        message: `unknown profile "${profile}"${hint ? ` (did you mean "${hint}"?)` : ""}`,
      });
    }
  }
  if (parsed.success && issues.length === 0) {
    const config = parsed.data as TenantConfig;
    buildPolicies(undefined, config.defaults, profiles, ["defaults"], issues);
    // A limiter needs at least one policy: a tenant whose list would be empty fails here, not at
    // its first request.
    const hasPolicies = (e: TenantEntry | undefined) =>
      e !== undefined &&
      ((e.policies?.length ?? 0) > 0 ||
        (e.profile !== undefined &&
          (profiles === undefined || profilePolicies(profiles[e.profile]!).length > 0)));
    const defaultsHave = hasPolicies(config.defaults);
    for (const [id, entry] of Object.entries(config.tenants)) {
      if (!defaultsHave && !hasPolicies(entry)) {
        issues.push({
          path: formatPath(["tenants", id]),
          message: "has no policies: give it a profile or policies, or give defaults some",
        });
        continue;
      }
      // Only overrides can fail once the structure is valid; skip the rest for speed.
      if (entry.overrides !== undefined)
        buildPolicies(config.defaults, entry, profiles, ["tenants", id], issues);
    }
    if (issues.length === 0) return config;
  }
  throw new ConfigError(issues);
}
