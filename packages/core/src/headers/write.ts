import { ConfigError, type ConfigIssue, invalidArgument } from "../errors.js";
import type { Decision, PolicyState } from "../limiter/index.js";
import { closestName, describeValue } from "../options-check.js";
import { sfString } from "./structured-fields.js";

/** Which IETF rate-limit header draft to write; false writes none of them. */
export type RateLimitStandard = "draft-8" | "draft-7" | "draft-6" | false;

/** Options of `rateLimitHeaders`. */
export interface RateLimitHeadersOptions {
  /** Default "draft-8". */
  standard?: RateLimitStandard;
  /** Also write `X-RateLimit-Limit/Remaining/Reset` (default false). */
  legacy?: boolean;
  /** Epoch ms that resets are counted from (default `Date.now()`). */
  nowMs?: number;
}

const OPTION_NAMES = ["standard", "legacy", "nowMs"] as const;
const STANDARDS: readonly unknown[] = ["draft-8", "draft-7", "draft-6", false];
/** Option objects already checked, so a middleware passing the same object pays once. */
const checked = new WeakSet<object>();

/** The options object checked last: a middleware passes the same one on every response. */
let lastChecked: object | undefined;

function checkOptions(options: RateLimitHeadersOptions): void {
  if (options === lastChecked || checked.has(options)) {
    lastChecked = options;
    return;
  }
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(options)) {
    if ((OPTION_NAMES as readonly string[]).includes(name)) continue;
    const hint = closestName(name, OPTION_NAMES);
    issues.push({
      path: name,
      message: `unknown option${hint ? ` (did you mean "${hint}"?)` : ""}`,
    });
  }
  if (options.standard !== undefined && !STANDARDS.includes(options.standard)) {
    issues.push({
      path: "standard",
      message: `standard must be "draft-8", "draft-7", "draft-6" or false (got ${describeValue(options.standard)})`,
    });
  }
  if (options.legacy !== undefined && typeof options.legacy !== "boolean") {
    issues.push({ path: "legacy", message: "legacy must be a boolean" });
  }
  if (options.nowMs !== undefined && !Number.isFinite(options.nowMs)) {
    issues.push({ path: "nowMs", message: "nowMs must be a finite number of epoch ms" });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  checked.add(options);
  lastChecked = options;
}

/** Whole seconds, rounded up, never negative. */
function seconds(ms: number): number {
  return ms <= 0 ? 0 : Math.ceil(ms / 1000);
}

function count(n: number): number {
  return n <= 0 ? 0 : Math.floor(n);
}

function isRate(p: PolicyState): boolean {
  return p.kind !== "concurrency";
}

/**
 * The rate policy whose numbers a single-policy header shows: when refused, the blocking policy
 * with the latest retry (its reset stands in for it: a blocked policy is usable again no later
 * than then); otherwise the one with the fewest remaining relative to its limit.
 */
function bindingPolicy(decision: Decision): PolicyState | undefined {
  const { policies } = decision;
  let best: PolicyState | undefined;
  if (!decision.allowed && decision.blockedBy.length > 0) {
    for (let i = 0; i < policies.length; i++) {
      const p = policies[i]!;
      if (!isRate(p) || !decision.blockedBy.includes(p.name)) continue;
      if (best === undefined || p.resetAtMs > best.resetAtMs) best = p;
    }
    if (best !== undefined) return best;
  }
  let bestRatio = Number.POSITIVE_INFINITY;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    if (!isRate(p)) continue;
    const ratio = p.limit > 0 ? p.remaining / p.limit : 0;
    if (best === undefined || ratio < bestRatio) {
      best = p;
      bestRatio = ratio;
    }
  }
  return best;
}

function windowParam(p: PolicyState): string {
  return p.windowMs === undefined ? "" : `;w=${seconds(p.windowMs)}`;
}

/** One policy of a `RateLimit-Policy` list, in the form of `standard`. */
function policyItem(p: PolicyState, standard: "draft-8" | "draft-7"): string {
  const q = count(p.limit);
  return standard === "draft-8"
    ? `${sfString(p.name)};q=${q}${windowParam(p)}`
    : `${q}${windowParam(p)}`;
}

/** The `RateLimit-Policy` value last written for one standard, with what it was written from. */
interface PolicyLine {
  /** The rate policies of the decision it was written for (a Decision is never changed). */
  readonly from: readonly PolicyState[];
  readonly text: string;
}

/**
 * A server writes the same policy list on nearly every response, so the last one of each
 * standard is kept and reused while every rate policy's name, limit and window are the ones it was
 * written from (a learned limit changes the limit, and with it the text).
 */
const lastPolicyLine: { "draft-8"?: PolicyLine; "draft-7"?: PolicyLine } = {};

/** Whether `line` was written from rate policies of the same names, limits and windows. */
function writtenFrom(line: PolicyLine, policies: readonly PolicyState[]): boolean {
  let j = 0;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    if (!isRate(p)) continue;
    const q = line.from[j++];
    if (q === undefined || p.name !== q.name || p.limit !== q.limit || p.windowMs !== q.windowMs) {
      return false;
    }
  }
  return j === line.from.length;
}

function policyLine(policies: readonly PolicyState[], standard: "draft-8" | "draft-7"): string {
  const last = lastPolicyLine[standard];
  if (last !== undefined && writtenFrom(last, policies)) return last.text;
  const from = policies.filter(isRate);
  const text = from.map((p) => policyItem(p, standard)).join(", ");
  lastPolicyLine[standard] = { from, text };
  return text;
}

/**
 * Rate-limit response headers for a decision, for a server answering its clients.
 * `draft-8`: `RateLimit-Policy` with one item per rate policy and `RateLimit` for the policy that
 * binds; `draft-7`: `RateLimit` dictionary and `RateLimit-Policy`; `draft-6`:
 * `RateLimit-Limit/Remaining/Reset`; `legacy` adds `X-RateLimit-*`. A refused decision adds
 * `Retry-After`. A degraded decision (made without the store) writes the configured limits only:
 * its remaining and reset are not known.
 */
export function rateLimitHeaders(
  decision: Decision,
  options: RateLimitHeadersOptions = {},
): Record<string, string> {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError([{ path: "", message: "options must be an object" }]);
  }
  checkOptions(options);
  if (
    typeof decision !== "object" ||
    decision === null ||
    !Array.isArray(decision.policies) ||
    !Array.isArray(decision.blockedBy)
  ) {
    throw invalidArgument("rateLimitHeaders needs a Decision");
  }
  const standard = options.standard === undefined ? "draft-8" : options.standard;
  const nowMs = options.nowMs ?? Date.now();
  const out: Record<string, string> = {};
  const known = decision.degraded !== true;
  const bind = bindingPolicy(decision);

  if (bind !== undefined) {
    const reset = Number.isFinite(bind.resetAtMs) ? seconds(bind.resetAtMs - nowMs) : undefined;
    const remaining = Number.isFinite(bind.remaining) ? count(bind.remaining) : undefined;
    if (standard === "draft-8") {
      out["RateLimit-Policy"] = policyLine(decision.policies, standard);
      if (known) {
        let state = sfString(bind.name);
        if (remaining !== undefined) state += `;r=${remaining}`;
        if (reset !== undefined) state += `;t=${reset}`;
        out.RateLimit = state;
      }
    } else if (standard === "draft-7") {
      out["RateLimit-Policy"] = policyLine(decision.policies, standard);
      if (known) {
        let state = `limit=${count(bind.limit)}`;
        if (remaining !== undefined) state += `, remaining=${remaining}`;
        if (reset !== undefined) state += `, reset=${reset}`;
        out.RateLimit = state;
      }
    } else if (standard === "draft-6") {
      out["RateLimit-Limit"] = String(count(bind.limit));
      if (known && remaining !== undefined) out["RateLimit-Remaining"] = String(remaining);
      if (known && reset !== undefined) out["RateLimit-Reset"] = String(reset);
    }
    if (options.legacy === true) {
      out["X-RateLimit-Limit"] = String(count(bind.limit));
      if (known && remaining !== undefined) out["X-RateLimit-Remaining"] = String(remaining);
      if (known && reset !== undefined) out["X-RateLimit-Reset"] = String(reset);
    }
  }
  if (!decision.allowed && Number.isFinite(decision.retryAfterMs)) {
    out["Retry-After"] = String(seconds(decision.retryAfterMs));
  }
  return out;
}
