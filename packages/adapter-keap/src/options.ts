import { ConfigError, type ConfigIssue, isValidTimeZone } from "@sluice/core";
import { checkMs, describeValue, optionsObject, unknownOptionIssues } from "@sluice/core/store";

/**
 * Refuses option names a factory does not know, with a "did you mean" hint (API.md "Options are
 * checked"): a misspelt option would otherwise be ignored silently.
 */
export function checkOptionNames(options: object, known: readonly string[], path = ""): void {
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(options, known, issues, path);
  if (issues.length > 0) throw new ConfigError(issues);
}

const PROFILES = ["oauth", "pat", "sak", "legacy", "org-daily-2500"] as const;
/** Identity fields each profile needs (docs/keap.md "Policy names"). */
const REQUIRED: Record<(typeof PROFILES)[number], readonly string[]> = {
  oauth: ["app"],
  pat: ["tenant", "token"],
  sak: ["tenant", "token"],
  legacy: ["app"],
  "org-daily-2500": ["tenant"],
};
const IDENTITY_FIELDS = ["app", "tenant", "token"];
const MAX_IDENTITY_LENGTH = 512;
/** Longest `maxWaitMs`: a longer timer would fire at once (Node's setTimeout limit). */
const MAX_WAIT_MS = 2 ** 31 - 1;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function wholeNumber(
  o: Record<string, unknown>,
  name: string,
  max: number,
  issues: ConfigIssue[],
): void {
  const v = o[name];
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    issues.push({
      path: name,
      message: `${name} must be a whole number from 0 to ${max} (got ${describeValue(v)})`,
    });
  }
}

function optionalFunction(o: Record<string, unknown>, name: string, issues: ConfigIssue[]): void {
  if (o[name] !== undefined && typeof o[name] !== "function") {
    issues.push({
      path: name,
      message: `${name} must be a function (got ${describeValue(o[name])})`,
    });
  }
}

/**
 * Checks `createKeapClient` options at once, every problem as one ConfigError issue. `known` is
 * the client's list of option names; values of names this does not know are left to the client.
 */
export function checkKeapClientOptions(input: unknown, known: readonly string[]): void {
  const o = optionsObject(input, "createKeapClient", false);
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(o, known, issues);

  const raw = o.profile;
  const profile = typeof raw === "string" && raw.startsWith("keap:") ? raw.slice(5) : raw;
  const known_ = (PROFILES as readonly unknown[]).includes(profile)
    ? (profile as (typeof PROFILES)[number])
    : undefined;
  if (known_ === undefined) {
    issues.push({
      path: "profile",
      message: `profile must be one of ${PROFILES.map((p) => `"${p}"`).join(", ")} (got ${describeValue(raw)})`,
    });
  }
  const store = o.store as { execute?: unknown; capabilities?: unknown } | undefined;
  if (!isObject(store) || typeof store.execute !== "function" || !isObject(store.capabilities)) {
    issues.push({
      path: "store",
      message: "store must be a sluice Store (memoryStore(), redisStore(...), postgresStore(...))",
    });
  }
  const identity = o.identity;
  if (!isObject(identity)) {
    issues.push({
      path: "identity",
      message: `identity must be an object with ${known_ === undefined ? "the fields the profile scopes on" : REQUIRED[known_].join(", ")}`,
    });
  } else {
    unknownOptionIssues(identity, IDENTITY_FIELDS, issues, "identity");
    for (const field of IDENTITY_FIELDS) {
      const value = identity[field];
      const required = known_ !== undefined && REQUIRED[known_].includes(field);
      if (value === undefined && !required) continue;
      if (typeof value !== "string" || value === "" || value.length > MAX_IDENTITY_LENGTH) {
        issues.push({
          path: `identity.${field}`,
          message: `identity.${field} must be a non-empty string of at most ${MAX_IDENTITY_LENGTH} characters${required ? ` (profile "${known_}" scopes on it)` : ""}`,
        });
      }
    }
  }
  optionalFunction(o, "fetch", issues);
  optionalFunction(o, "random", issues);
  wholeNumber(o, "maxRetries", 100, issues);
  wholeNumber(o, "maxWaitMs", MAX_WAIT_MS, issues);
  if (o.timeoutMs !== undefined) {
    const bad = checkMs(o.timeoutMs, "timeoutMs");
    if (bad !== undefined) issues.push({ path: "timeoutMs", message: bad });
  }
  const margin = o.spikeMargin;
  if (
    margin !== undefined &&
    (typeof margin !== "number" || !Number.isFinite(margin) || margin < 0 || margin > 10)
  ) {
    issues.push({
      path: "spikeMargin",
      message: `spikeMargin must be a number from 0 to 10 (got ${describeValue(margin)})`,
    });
  }
  if (o.strict !== undefined && typeof o.strict !== "boolean") {
    issues.push({
      path: "strict",
      message: `strict must be true or false (got ${describeValue(o.strict)})`,
    });
  }
  if (o.prefix !== undefined && (typeof o.prefix !== "string" || o.prefix === "")) {
    issues.push({ path: "prefix", message: "prefix must be a non-empty string" });
  }
  const timeZone = o.timeZone;
  if (timeZone !== undefined) {
    if (typeof timeZone !== "string" || !isValidTimeZone(timeZone)) {
      issues.push({
        path: "timeZone",
        message: `timeZone must be an IANA time zone name such as "America/New_York" (got ${describeValue(timeZone)})`,
      });
    } else if (known_ !== undefined && known_ !== "org-daily-2500") {
      issues.push({
        path: "timeZone",
        message:
          "timeZone applies to the org-daily-2500 profile only (Keap's windows reset at 00:00 UTC)",
      });
    }
  }
  const overrides = o.overrides;
  if (overrides !== undefined) {
    if (!isObject(overrides)) {
      issues.push({
        path: "overrides",
        message: "overrides must be an object of policy name -> fields",
      });
    } else {
      for (const [name, fields] of Object.entries(overrides)) {
        if (!isObject(fields)) {
          issues.push({ path: `overrides.${name}`, message: "must be an object of policy fields" });
        }
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
