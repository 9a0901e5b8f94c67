import { ConfigError, type ConfigIssue, invalidArgument } from "../errors.js";
import { createLimiter, engineOf, type Limiter, type LimiterOptions } from "../limiter/index.js";
import { readOptions } from "../limiter/options.js";
import { optionsObject, unknownOptionIssues } from "../options-check.js";
import { compilePolicies } from "../policy/compile.js";
import type { Policy } from "../policy/schema.js";
import type { Store } from "../store/index.js";
import { buildPolicies, type Profiles, profilePartition } from "./build.js";
import { parseTenantConfig } from "./parse.js";
import { checkProfiles } from "./profiles.js";
import type { TenantConfig, TenantEntry } from "./schema.js";

/** Options of `createTenantRegistry`. */
export interface TenantRegistryOptions {
  /** The tenant configuration (parsed JSON; see `parseTenantConfig` for its shape). */
  config: unknown;
  /** The store every tenant's limiter uses, each under its own namespace. */
  store: Store;
  /** Profiles the configuration may name (e.g. `keapProfiles`). */
  profiles?: Profiles;
  /** Store namespace; each tenant's limiter uses `<prefix>:tenant:<id>` (default "sluice"). */
  prefix?: string;
  /** Partition field when the tenant's profile names none. */
  partitionBy?: string;
  /**
   * Further `createLimiter` options applied to every tenant's limiter (`onStoreError`, `timeoutMs`, ...).
   */
  limiterOptions?: Omit<LimiterOptions, "store" | "policies" | "prefix" | "partitionBy">;
}

/** One limiter per tenant of a configuration file, with hot reload; from `createTenantRegistry`. */
export interface TenantRegistry {
  /**
   * The tenant's limiter, the same instance on every call while it is in use. A tenant missing
   * from the file gets the `defaults`.
   *
   * @param id - the tenant's id, as in the file's `tenants`.
   * @throws SluiceError `INVALID_ARGUMENT` for an unknown tenant when there are no `defaults`, or
   * after `close()`.
   */
  limiter(id: string): Limiter;
  /**
   * Applies a new configuration entirely or not at all; state survives where a policy keeps its name.
   *
   * @param json - the new configuration (parsed JSON).
   * @throws ConfigError when the configuration is invalid (nothing is changed then).
   */
  update(json: unknown): void;
  /** The ids of the tenants the configuration names. */
  tenants(): string[];
  /** Closes every tenant's limiter (pending waits reject); the registry refuses further calls. */
  close(): void;
}

const REGISTRY_OPTIONS = [
  "config",
  "store",
  "profiles",
  "prefix",
  "partitionBy",
  "limiterOptions",
] as const satisfies readonly (keyof TenantRegistryOptions)[];
const LIMITER_OPTIONS = ["onStoreError", "timeoutMs", "learnedLimitTtlMs", "breaker"] as const;
/** Stands in for a tenant's policies while the limiter options are checked on their own. */
const PROBE: readonly Policy[] = [{ kind: "concurrency", name: "probe", limit: 1, leaseTtl: 1 }];

/** A tenant's limiter and the policy list and partition it was last given. */
interface Held {
  readonly limiter: Limiter;
  policies: readonly Policy[];
  partitionBy: string | undefined;
}

/** What `update` gives a live tenant: its next policies and partition (undefined: removed). */
interface Plan {
  readonly held: Held;
  readonly policies: readonly Policy[] | undefined;
  readonly partitionBy: string | undefined;
}

/** A tenant `update` has already moved, with what it had before (to put back on failure). */
interface Applied {
  readonly held: Held;
  readonly policies: readonly Policy[];
  readonly partitionBy: string | undefined;
}

/** Checks every option but `config` (parsed next), listing every problem in one ConfigError. */
function checkRegistryOptions(input: unknown): TenantRegistryOptions {
  const options = optionsObject(input, "createTenantRegistry", false);
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(options, REGISTRY_OPTIONS, issues);
  const { prefix, partitionBy, limiterOptions, profiles, store } = options;
  if (prefix !== undefined && (typeof prefix !== "string" || prefix === "")) {
    issues.push({ path: "prefix", message: "prefix must be a non-empty string" });
  }
  if (partitionBy !== undefined && (typeof partitionBy !== "string" || partitionBy === "")) {
    issues.push({ path: "partitionBy", message: "partitionBy must be a non-empty key field name" });
  }
  if (profiles !== undefined) checkProfiles(profiles, issues);
  // The limiter's own checks, store included, once here rather than at a tenant's first request.
  let extra: Record<string, unknown> = {};
  if (limiterOptions !== undefined) {
    if (typeof limiterOptions !== "object" || limiterOptions === null) {
      issues.push({ path: "limiterOptions", message: "limiterOptions must be an object" });
    } else {
      unknownOptionIssues(limiterOptions, LIMITER_OPTIONS, issues, "limiterOptions");
      extra = Object.fromEntries(
        Object.entries(limiterOptions).filter(([k]) =>
          (LIMITER_OPTIONS as readonly string[]).includes(k),
        ),
      );
    }
  }
  try {
    readOptions({ ...extra, store, policies: PROBE } as LimiterOptions);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const i of e.issues) {
      issues.push(i.path === "store" ? i : { ...i, path: `limiterOptions.${i.path}` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return options as unknown as TenantRegistryOptions;
}

/**
 * One limiter per tenant, created at its first use and held (strongly) until the tenant leaves the
 * configuration or the registry is closed: `limiter(id)` is the same instance, with whatever
 * listeners the caller put on it, for as long as the tenant is configured.
 */
export function createTenantRegistry(input: TenantRegistryOptions): TenantRegistry {
  const options = checkRegistryOptions(input);
  const { store, profiles } = options;
  const prefix = options.prefix ?? "sluice";
  const parseOptions = profiles === undefined ? {} : { profiles };
  let config: TenantConfig = parseTenantConfig(options.config, parseOptions);
  let closed = false;
  const live = new Map<string, Held>();

  const entryOf = (cfg: TenantConfig, id: string): TenantEntry | undefined =>
    Object.hasOwn(cfg.tenants, id) ? cfg.tenants[id] : undefined;

  /** The tenant's policies, checked (a ConfigError names the tenant); undefined: not served. */
  const policiesFor = (cfg: TenantConfig, id: string): Policy[] | undefined => {
    const entry = entryOf(cfg, id);
    if (entry === undefined && cfg.defaults === undefined) return undefined;
    const at = ["tenants", id];
    const issues: ConfigIssue[] = [];
    const policies = buildPolicies(cfg.defaults, entry ?? {}, profiles, at, issues);
    if (issues.length > 0) throw new ConfigError(issues);
    compilePolicies(policies, [...at, "policies"]);
    return policies;
  };

  const partitionFor = (cfg: TenantConfig, id: string): string | undefined => {
    const name = entryOf(cfg, id)?.profile ?? cfg.defaults?.profile;
    const def = name === undefined || profiles === undefined ? undefined : profiles[name];
    return profilePartition(def) ?? options.partitionBy;
  };

  return {
    limiter(id) {
      if (closed) throw invalidArgument("the tenant registry is closed");
      const held = live.get(id);
      if (held !== undefined) return held.limiter;
      if (typeof id !== "string" || id === "") {
        throw invalidArgument("a tenant id must be a non-empty string");
      }
      const policies = policiesFor(config, id);
      if (policies === undefined) {
        throw invalidArgument(`unknown tenant "${id}" and the configuration has no defaults`);
      }
      const partitionBy = partitionFor(config, id);
      const limiter = createLimiter({
        ...options.limiterOptions,
        store,
        policies,
        prefix: `${prefix}:tenant:${id}`,
        ...(partitionBy === undefined ? {} : { partitionBy }),
      });
      live.set(id, { limiter, policies, partitionBy });
      return limiter;
    },
    update(json) {
      if (closed) throw invalidArgument("the tenant registry is closed");
      // Everything is built and checked before anything changes: a bad file (or one whose second
      // tenant is bad) leaves every limiter, and the configuration, as they were.
      const next = parseTenantConfig(json, parseOptions);
      const plans: Plan[] = [];
      const issues: ConfigIssue[] = [];
      for (const [id, held] of live) {
        const removed = entryOf(config, id) !== undefined && entryOf(next, id) === undefined;
        try {
          plans.push({
            held,
            policies: removed ? undefined : policiesFor(next, id),
            partitionBy: partitionFor(next, id),
          });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          issues.push(...e.issues);
        }
      }
      if (issues.length > 0) throw new ConfigError(issues);
      const applied: Applied[] = [];
      try {
        for (const { held, policies, partitionBy } of plans) {
          if (policies === undefined) continue;
          // A profile that changes the partition moves the tenant's keys with it.
          engineOf(held.limiter).updatePolicies(policies, partitionBy);
          applied.push({ held, policies: held.policies, partitionBy: held.partitionBy });
          held.policies = policies;
          held.partitionBy = partitionBy;
        }
      } catch (e) {
        // Checked above, so not expected; if a limiter still refuses, put back those already moved.
        for (const { held, policies, partitionBy } of applied) {
          engineOf(held.limiter).updatePolicies(policies, partitionBy);
          held.policies = policies;
          held.partitionBy = partitionBy;
        }
        throw e;
      }
      config = next;
      for (const { held, policies } of plans) {
        if (policies === undefined)
          held.limiter.close("this tenant was removed from the configuration");
      }
      for (const [id, held] of live) if (held.limiter.closed) live.delete(id);
    },
    tenants: () => Object.keys(config.tenants),
    close() {
      closed = true;
      for (const held of live.values()) held.limiter.close("the tenant registry was closed");
      live.clear();
    },
  };
}
