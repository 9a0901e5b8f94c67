import { ConfigError, type Policy } from "@sluice/core";
import { describeValue } from "@sluice/core/store";

/**
 * Keap throttling profiles. Every number is a default from docs/keap.md ("Profiles" and
 * "Policy names"); where sources disagree the strictest credible value is used, and the real
 * limits are learned from response headers (see `parseKeapHeaders`). Policy names are stable:
 * users override them by name.
 */

/** Profile names, as registered with `createTenantRegistry({ profiles: keapProfiles })`. */
export type KeapProfileName =
  | "keap:oauth"
  | "keap:pat"
  | "keap:sak"
  | "keap:legacy"
  | "keap:org-daily-2500";

/** Fraction by which spike spacing is lengthened beyond the nominal interval (docs/keap.md: "about 10%"). */
export const SPIKE_MARGIN = 0.1;

/**
 * Spacing in ms between requests for a nominal spike rate (per second), `margin` below it (default
 * the ~10% of docs/keap.md "Adapter behaviour"): ceil(1000 / rate * (1 + margin)), computed on
 * thousandths so that float error cannot round 44 up to 45.
 */
export function spikeSpacingMs(ratePerSecond: number, margin = SPIKE_MARGIN): number {
  return Math.ceil((1000 * Math.round((1 + margin) * 1000)) / (ratePerSecond * 1000));
}

/**
 * Spike arrest as spacing, not counting (docs/keap.md "Why clients see 429 below the documented rate":
 * Apigee smooths a rate into intervals with a burst allowance of about one): a bucket of one token.
 */
function spike(ratePerSecond: number, scope: string[]): Policy {
  return {
    kind: "tokenBucket",
    name: "spike",
    scope,
    capacity: 1,
    refill: { tokens: 1, every: spikeSpacingMs(ratePerSecond) },
  };
}

/**
 * Tenant windows (docs/keap.md "Profiles", row "all token types"): 10,000 / minute and 250,000 /
 * day at 00:00 UTC, Keap's per-application-instance limits enforced since 2026-06-08 (Keap
 * developer docs, developer.infusionsoft.com ?p=2637). The 5,000 / minute in Keap community thread
 * "Too Many Requests" is an older value; a tenant still reporting it is learned from its headers.
 */
function tenantWindows(): Policy[] {
  return [
    { kind: "slidingWindow", name: "tenantMinute", scope: ["tenant"], limit: 10_000, window: "1m" },
    {
      kind: "fixedWindow",
      name: "tenantDay",
      scope: ["tenant"],
      limit: 250_000,
      window: "1d",
      align: "calendar",
    },
  ];
}

/** PAT and SAK share one shape (docs/keap.md "Profiles", row `pat`, `sak`). */
function tokenProfile(): Policy[] {
  return [
    // 5/s: Apigee SpikeArrest `Rate=5ps` (Keap community thread "API ERROR Quota Exceeded"), stricter than the documented 10/s. Per key.
    spike(5, ["token"]),
    // 240 / minute: Keap community thread "Too Many Requests" headers (x-keap-product-throttle-limit
    // 240). Per tenant, shared by every key of it: Keap staff write that competing scripts of one
    // tenant "may experience per-minute quota issues" (Keap community thread "Another API throttling question", forum thread 92313).
    { kind: "slidingWindow", name: "throttle", scope: ["tenant"], limit: 240, window: "1m" },
    // 30,000 / day per tenant, 00:00 UTC: Keap community thread "Too Many Requests" headers; quotas are per tenant (Keap community thread "Another API throttling question").
    {
      kind: "fixedWindow",
      name: "quota",
      scope: ["tenant"],
      limit: 30_000,
      window: "1d",
      align: "calendar",
    },
    ...tenantWindows(),
  ];
}

/**
 * Policy lists by profile name. `keap:oauth` ends with the tenant windows (`tenantMinute`,
 * `tenantDay`, scoped by `tenant`): they apply "with a tenant" (docs/keap.md "Policy names"). A limiter
 * built from the full list needs a `tenant` field in every key; for an identity without a tenant
 * use `keapPolicies("keap:oauth", { tenant: false })`, which leaves them out.
 */
const POLICIES: Record<KeapProfileName, Policy[]> = {
  "keap:oauth": [
    // 25/s per app, no headers report it: Keap FAQ "How does throttling work?"; Keap community thread "API Restrictions & Rate Limits".
    spike(25, ["app"]),
    // 1,500 / minute, rolling, per app: Keap "API token quota and usage measurements"; Keap community thread "Too Many Requests".
    { kind: "slidingWindow", name: "throttle", scope: ["app"], limit: 1_500, window: "1m" },
    // 150,000 / day at 00:00 UTC, per app (client id, Keap community thread "Another API throttling question"): same sources; Keap community thread "API Restrictions & Rate Limits"'s older
    // 125,000 predates the 2020 gateway move.
    {
      kind: "fixedWindow",
      name: "quota",
      scope: ["app"],
      limit: 150_000,
      window: "1d",
      align: "calendar",
    },
    ...tenantWindows(),
  ],
  "keap:pat": tokenProfile(),
  "keap:sak": tokenProfile(),
  // Deprecated: Keap revoked legacy API keys in Q1 2025 and sunsets XML-RPC on 2026-12-31 (Keap
  // help centre, "Sunsetting legacy API keys"). Kept for the pool semantics and old deployments.
  "keap:legacy": [
    // 10,000 tokens, +1 every 500 ms (~2/s): Keap community thread "API Restrictions & Rate Limits"; Keap FAQ.
    {
      kind: "pool",
      name: "pool",
      scope: ["app"],
      capacity: 10_000,
      refill: { tokens: 1, every: 500 },
    },
    // The gateway's 25/s spike arrest (docs/keap.md "Policy names", `keap:legacy`). The per-minute proxy
    // `throttle` is not published (Keap community thread "API Restrictions & Rate Limits"): it is not in the default list; set it by override
    // or policy once headers report one.
    spike(25, ["app"]),
  ],
  "keap:org-daily-2500": [
    // 2,500 / day per organisation (Forms On Fire "API Usage Limits"). The day boundary
    // is midnight in the organisation's zone: UTC by default, set `timeZone` by override/option.
    {
      kind: "fixedWindow",
      name: "daily",
      scope: ["tenant"],
      limit: 2_500,
      window: "1d",
      align: "calendar",
    },
    // 3 at once, a soft limit (Forms On Fire "API Usage Limits"); lease TTL 2 min, renewed while a request runs (docs/keap.md
    // "Policy names").
    { kind: "concurrency", name: "concurrent", scope: ["tenant"], limit: 3, leaseTtl: "2m" },
  ],
};

/**
 * Partition field per profile (docs/keap.md "Policy names", column "partition"): pass it as the
 * limiter's `partitionBy`. Note that with `partitionBy: "app"` the oauth tenant windows are kept
 * per app and tenant, not shared across apps of one tenant.
 */
export const keapPartitions: Record<KeapProfileName, string> & Record<string, string> = {
  "keap:oauth": "app",
  "keap:pat": "tenant",
  "keap:sak": "tenant",
  "keap:legacy": "app",
  "keap:org-daily-2500": "tenant",
};

/** A Keap profile: its policies and the key field its state is partitioned by. */
export interface KeapProfile {
  /** The policies every key of this profile is held to, as `createLimiter` takes them. */
  readonly policies: Policy[];
  /**
   * The key field (`tenant`, `app` or `token`) that keeps each key's state together in one slot
   * of a co-locating store such as Redis Cluster.
   */
  readonly partitionBy: string;
}

/**
 * The profiles by name, each `{ policies, partitionBy }`: the shape `createTenantRegistry` and
 * `parseTenantConfig` take as `profiles`, so a registry on a store that requires partitions (Redis
 * Cluster) accepts `{ tenant, token }` or `{ app, tenant }` keys.
 */
export const keapProfiles: Record<KeapProfileName, KeapProfile> & Record<string, KeapProfile> =
  Object.fromEntries(
    Object.entries(POLICIES).map(([name, policies]) => [
      name,
      { policies, partitionBy: keapPartitions[name]! },
    ]),
  ) as Record<KeapProfileName, KeapProfile>;

/** Names of the policies that are only used when the identity has a tenant. */
const TENANT_ONLY = new Set(["tenantMinute", "tenantDay"]);

/**
 * A fresh copy of a profile's policies. With `{ tenant: false }` the oauth tenant windows are left
 * out, so a key of `{ app }` alone is accepted. Throws on an unknown profile name.
 */
export function keapPolicies(
  profile: KeapProfileName,
  identity: { tenant?: boolean } = {},
): Policy[] {
  const list = Object.hasOwn(POLICIES, profile) ? POLICIES[profile] : undefined;
  if (list === undefined) {
    throw new ConfigError([
      {
        path: "profile",
        message: `unknown Keap profile ${describeValue(profile)} (one of ${Object.keys(POLICIES).join(", ")})`,
      },
    ]);
  }
  const keep =
    identity.tenant === false && profile === "keap:oauth"
      ? list.filter((p) => !TENANT_ONLY.has(p.name))
      : list;
  return structuredClone(keep);
}
