import { ConfigError, type ConfigIssue } from "../errors.js";
import { describeValue, unknownOptionIssues } from "../options-check.js";
import { compilePolicies } from "../policy/compile.js";
import { formatPath } from "../policy/issues.js";

const PROFILE_KEYS = ["policies", "partitionBy"] as const;
/** Profile tables already checked: a registry re-parses with the same table on every update. */
const checked = new WeakSet<object>();

/**
 * Checks a `profiles` option: each entry a policy list, or `{ policies, partitionBy? }`, with
 * policies that compile. Issues are pushed with paths under `profiles`.
 */
export function checkProfiles(profiles: unknown, issues: ConfigIssue[]): void {
  if (typeof profiles !== "object" || profiles === null || Array.isArray(profiles)) {
    issues.push({
      path: "profiles",
      message: `profiles must be an object of profile name -> policies (got ${describeValue(profiles)})`,
    });
    return;
  }
  if (checked.has(profiles)) return;
  const start = issues.length;
  for (const [name, def] of Object.entries(profiles)) {
    const at = ["profiles", name];
    let policies: unknown = def;
    if (typeof def === "object" && def !== null && !Array.isArray(def)) {
      unknownOptionIssues(def, PROFILE_KEYS, issues, formatPath(at));
      const { partitionBy } = def as { partitionBy?: unknown };
      if (partitionBy !== undefined && (typeof partitionBy !== "string" || partitionBy === "")) {
        issues.push({
          path: formatPath([...at, "partitionBy"]),
          message: "partitionBy must be a non-empty key field name",
        });
      }
      policies = (def as { policies?: unknown }).policies;
      at.push("policies");
    } else if (!Array.isArray(def)) {
      issues.push({
        path: formatPath(at),
        message: `a profile must be a policy list or { policies, partitionBy } (got ${describeValue(def)})`,
      });
      continue;
    }
    try {
      compilePolicies(policies, at);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length === start) checked.add(profiles);
}
