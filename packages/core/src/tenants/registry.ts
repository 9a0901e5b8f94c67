import { invalidArgument } from "../errors.js";
import { createLimiter, type Limiter, type LimiterOptions } from "../limiter/index.js";
import type { Store } from "../store/index.js";
import { buildPolicies, type Profiles, profilePartition } from "./build.js";
import { parseTenantConfig } from "./parse.js";
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

/**
 * Limiters are held through WeakRef: one the caller still references (or with pending waits,
 * which reference it) stays the same instance; an idle one is collected, and its state lives on
 * in the store under the tenant's prefix, so a new instance picks it up.
 */
export function createTenantRegistry(options: TenantRegistryOptions): TenantRegistry {
  const { store, profiles } = options;
  const prefix = options.prefix ?? "sluice";
  let config: TenantConfig = parseTenantConfig(
    options.config,
    profiles === undefined ? {} : { profiles },
  );
  let closed = false;
  const live = new Map<string, WeakRef<Limiter>>();
  const finalizer = new FinalizationRegistry<string>((id) => {
    if (live.get(id)?.deref() === undefined) live.delete(id);
  });

  const entryOf = (cfg: TenantConfig, id: string): TenantEntry | undefined =>
    Object.hasOwn(cfg.tenants, id) ? cfg.tenants[id] : undefined;

  const policiesFor = (cfg: TenantConfig, id: string) => {
    const entry = entryOf(cfg, id);
    if (entry === undefined && cfg.defaults === undefined) return undefined;
    return buildPolicies(cfg.defaults, entry ?? {}, profiles, ["tenants", id], []);
  };

  const partitionFor = (cfg: TenantConfig, id: string): string | undefined => {
    const name = entryOf(cfg, id)?.profile ?? cfg.defaults?.profile;
    const def = name === undefined || profiles === undefined ? undefined : profiles[name];
    return profilePartition(def) ?? options.partitionBy;
  };

  return {
    limiter(id) {
      if (closed) throw invalidArgument("the tenant registry is closed");
      const existing = live.get(id)?.deref();
      if (existing !== undefined) return existing;
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
      live.set(id, new WeakRef(limiter));
      finalizer.register(limiter, id);
      return limiter;
    },
    update(json) {
      const next = parseTenantConfig(json, profiles === undefined ? {} : { profiles });
      // Validated above; every live limiter's list is built before any is touched.
      const plans: [Limiter, ReturnType<typeof policiesFor>][] = [];
      for (const [id, ref] of live) {
        const l = ref.deref();
        if (l === undefined) continue;
        const removed = entryOf(config, id) !== undefined && entryOf(next, id) === undefined;
        plans.push([l, removed ? undefined : policiesFor(next, id)]);
      }
      config = next;
      for (const [l, policies] of plans) {
        if (policies === undefined) l.close("this tenant was removed from the configuration");
        else l.updatePolicies(policies);
      }
      for (const [id, ref] of live) if (ref.deref()?.closed !== false) live.delete(id);
    },
    tenants: () => Object.keys(config.tenants),
    close() {
      closed = true;
      for (const ref of live.values()) ref.deref()?.close("the tenant registry was closed");
      live.clear();
    },
  };
}
