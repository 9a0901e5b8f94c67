import type { ConfigIssue } from "../errors.js";
import { policyKnownKeys } from "../policy/compile.js";
import { formatPath, toConfigIssues } from "../policy/issues.js";
import { type Policy, policySchema } from "../policy/schema.js";
import type { TenantEntry } from "./schema.js";

/** A profile is a policy list, or a policy list with the key field it partitions by. */
export type ProfileDefinition =
  | readonly Policy[]
  | { policies: readonly Policy[]; partitionBy?: string };
/**
 * Named profiles a tenant configuration can refer to (`"profile": "keap:pat"`), e.g.
 * `keapProfiles` from `@sluice/adapter-keap`.
 */
export type Profiles = Readonly<Record<string, ProfileDefinition>>;

export function profilePolicies(p: ProfileDefinition): readonly Policy[] {
  return Array.isArray(p)
    ? (p as readonly Policy[])
    : (p as { policies: readonly Policy[] }).policies;
}

export function profilePartition(p: ProfileDefinition | undefined): string | undefined {
  return p === undefined || Array.isArray(p)
    ? undefined
    : (p as { partitionBy?: string }).partitionBy;
}

const LOCKED = ["kind", "name", "scope"] as const;

/** Equal as JSON; a value JSON cannot hold (a BigInt, a cycle) equals nothing. */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function merge(
  base: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? merge(b, v) : v;
  }
  return out;
}

/**
 * Builds a tenant's policy list (defaults profile, defaults policies, own profile, own policies,
 * then overrides), pushing every problem to `issues` with paths under `at`.
 */
export function buildPolicies(
  defaults: TenantEntry | undefined,
  entry: TenantEntry | undefined,
  profiles: Profiles | undefined,
  at: readonly PropertyKey[],
  issues: ConfigIssue[],
): Policy[] {
  const list = new Map<string, Policy>();
  const add = (ps: readonly Policy[] | undefined) => {
    for (const p of ps ?? []) {
      list.delete(p.name);
      list.set(p.name, p);
    }
  };
  const addProfile = (e: TenantEntry | undefined) => {
    if (e?.profile === undefined || profiles === undefined) return;
    const def = profiles[e.profile];
    if (def !== undefined) add(profilePolicies(def));
  };
  addProfile(defaults);
  add(defaults?.policies);
  addProfile(entry);
  add(entry?.policies);
  for (const [source, path] of [
    [defaults, ["defaults"]],
    [entry, at],
  ] as const) {
    for (const [name, patch] of Object.entries(source?.overrides ?? {})) {
      const here = [...path, "overrides", name];
      // Defaults' overrides are checked once against the defaults' own list, not per tenant.
      const sink = source === defaults && entry !== undefined ? [] : issues;
      const base = list.get(name);
      if (base === undefined) {
        if (profiles !== undefined || source?.profile === undefined) {
          sink.push({
            path: formatPath(here),
            message: `no policy named "${name}" in this tenant's list (${[...list.keys()].map((n) => `"${n}"`).join(", ") || "empty"})`,
          });
        }
        continue;
      }
      let ok = true;
      for (const f of LOCKED) {
        if (f in patch && !sameJson(patch[f], (base as Record<string, unknown>)[f])) {
          sink.push({ path: formatPath([...here, f]), message: `an override may not change ${f}` });
          ok = false;
        }
      }
      if (!ok) continue;
      const merged = merge(base as Record<string, unknown>, patch);
      const parsed = policySchema.safeParse(merged);
      if (!parsed.success) {
        sink.push(...toConfigIssues(parsed.error.issues, here, policyKnownKeys, merged));
        continue;
      }
      list.set(name, parsed.data as Policy);
    }
  }
  return [...list.values()];
}
