import {
  type Observation,
  parseRateLimitHeadersDetailed,
  type RateLimitHeaderInput,
} from "@sluice/core";

/**
 * Rate-limit response headers -> observations for `Limiter.reconcile`.
 *
 * Understood (Keap's response headers (docs/keap.md) and "Other header conventions"):
 * - `x-keap-product-throttle-*` -> policy `throttle`; `x-keap-product-quota-*` -> `quota`
 *   (`expiry-time` in epoch ms, or epoch seconds when it has 9 or 10 digits);
 * - `x-keap-tenant-throttle-*`, pipe-separated windows, by time unit: minute -> `tenantMinute`,
 *   day -> `tenantDay` (one window or none is fine);
 * - the same names with `x-apigee-` instead of `x-keap-` (sent alongside them until 2022), where
 *   the `x-keap-` one is absent;
 * - the standard headers, through core's `parseRateLimitHeaders`: IETF `RateLimit-Policy` /
 *   `RateLimit` (the policy name is the item's name), older `RateLimit-Limit/-Remaining/-Reset` and
 *   `X-RateLimit-Limit/-Remaining/-Reset` -> policy `default` (no Keap policy has that name: route
 *   or rename it yourself if you need it); `Retry-After` (seconds, also decimal, or an HTTP date)
 *   -> `retryAfterMs`, and the reset of an exhausted window that reports none.
 *
 * A blank value means "unknown" and yields no field (never 0). Malformed, negative, non-integer or
 * implausible values are skipped and reported in `issues`. Never throws.
 */

export type KeapHeadersInput =
  | Headers
  | Record<string, string | readonly string[] | string[] | undefined>;

/** A Keap rate-limit header that was present but could not be read. */
export interface KeapHeaderIssue {
  /** The header's name. */
  header: string;
  /** Its value as received. */
  value: string;
  /** Why it was not used. */
  reason: string;
}

/** What `parseKeapHeadersDetailed` read from a Keap response's headers. */
export interface KeapHeadersResult {
  /** Observations for `limiter.reconcile`, one per policy the headers describe. */
  observations: Observation[];
  /** From `Retry-After`, relative to `nowMs` (never negative). */
  retryAfterMs?: number;
  /** Headers that were present but could not be read, and why. */
  issues: KeapHeaderIssue[];
}

/** Options of `parseKeapHeaders` and `parseKeapHeadersDetailed`. */
export interface ParseKeapHeadersOptions {
  /** Epoch ms used for relative resets and plausibility checks (default `Date.now()`). */
  nowMs?: number;
}

const KEAP_PREFIX = "x-keap-";
const APIGEE_PREFIX = "x-apigee-";
/** Largest limit or remaining count accepted. */
const MAX_COUNT = 1e12;
const DAY_MS = 86_400_000;
/** A reset may lie at most this far ahead of now, and an expiry at most this far behind. */
const MAX_RESET_AHEAD_MS = 400 * DAY_MS;
const MAX_EXPIRY_BEHIND_MS = 2 * DAY_MS;

/** Observations for `reconcile`; see `parseKeapHeadersDetailed` for `Retry-After` and issues. */
export function parseKeapHeaders(
  headers: KeapHeadersInput,
  options?: ParseKeapHeadersOptions,
): Observation[] {
  return parseKeapHeadersDetailed(headers, options).observations;
}

/**
 * As `parseKeapHeaders`, with the headers that could not be read.
 *
 * @param headers - a `Headers` object or a plain record of header values.
 * @param options - `nowMs` for relative resets.
 * @returns the observations and the issues found.
 */
export function parseKeapHeadersDetailed(
  headers: KeapHeadersInput,
  options: ParseKeapHeadersOptions = {},
): KeapHeadersResult {
  const issues: KeapHeaderIssue[] = [];
  const obs = new ObservationSet();
  let retryAfterMs: number | undefined;
  try {
    const nowOpt = (options as { nowMs?: unknown } | null | undefined)?.nowMs;
    const nowMs = typeof nowOpt === "number" && Number.isFinite(nowOpt) ? nowOpt : Date.now();
    const h = new HeaderReader(headers, issues);
    const ctx: Ctx = { h, issues, nowMs };
    parseKeapProduct(ctx, obs, "throttle", "minute", false);
    parseKeapProduct(ctx, obs, "quota", "day", true);
    parseKeapTenant(ctx, obs);
    // The standard headers (IETF RateLimit/RateLimit-Policy, RateLimit-*, X-RateLimit-*,
    // Retry-After) are core's; Keap's own names came first and win where both say something.
    const standard = parseRateLimitHeadersDetailed(headers as RateLimitHeaderInput, { nowMs });
    for (const o of standard.observations) obs.add(o.policy, o);
    const keapIssues = issues.length;
    issues.push(...standard.issues);
    retryAfterMs = standard.retryAfterMs ?? decimalRetryAfter(h, issues);
    // The header reader is shared: an input problem reported by both is reported once.
    dedupe(issues, keapIssues);
    // An exhausted Keap window without a reset of its own admits nothing until the retry.
    if (retryAfterMs !== undefined) obs.applyRetryAfter(nowMs + retryAfterMs);
  } catch (err) {
    issues.push({ header: "", value: "", reason: `unexpected input (${describe(err)})` });
  }
  const result: KeapHeadersResult = { observations: obs.list(), issues };
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  return result;
}

/** Drops issues after `from` that repeat one before it. */
function dedupe(issues: KeapHeaderIssue[], from: number): void {
  const seen = new Set(
    issues.slice(0, from).map((i) => `${i.header}\u0000${i.value}\u0000${i.reason}`),
  );
  for (let i = issues.length - 1; i >= from; i--) {
    const issue = issues[i]!;
    if (seen.has(`${issue.header}\u0000${issue.value}\u0000${issue.reason}`)) issues.splice(i, 1);
  }
}

// ---- input --------------------------------------------------------------------------------

interface Ctx {
  readonly h: HeaderReader;
  readonly issues: KeapHeaderIssue[];
  readonly nowMs: number;
}

/** Lower-cased header names to values; repeated headers are combined with ", " as HTTP does. */
class HeaderReader {
  private readonly map = new Map<string, string>();

  constructor(input: unknown, issues: KeapHeaderIssue[]) {
    if (input === null || typeof input !== "object") return;
    const add = (name: string, value: string) => {
      const k = name.toLowerCase();
      const prev = this.map.get(k);
      this.map.set(k, prev === undefined ? value : `${prev}, ${value}`);
    };
    const h = input as { forEach?: unknown; get?: unknown };
    if (typeof h.forEach === "function" && typeof h.get === "function") {
      (input as Headers).forEach((value, name) => {
        if (typeof value === "string" && typeof name === "string") add(name, value);
      });
      return;
    }
    for (const [name, raw] of Object.entries(input as Record<string, unknown>)) {
      if (raw === undefined || raw === null) continue;
      if (typeof raw === "string") add(name, raw);
      else if (typeof raw === "number" && Number.isFinite(raw)) add(name, String(raw));
      else if (Array.isArray(raw)) {
        const parts = raw.filter((v): v is string => typeof v === "string");
        if (parts.length !== raw.length) {
          issues.push({ header: name, value: clip(raw), reason: "array holds non-string values" });
        }
        if (parts.length > 0) add(name, parts.join(", "));
      } else {
        issues.push({ header: name.toLowerCase(), value: clip(raw), reason: "not a string" });
      }
    }
  }

  /** A header's value; a Keap name falls back to its `x-apigee-` twin (sent until 2022). */
  get(name: string): string | undefined {
    const value = this.map.get(name);
    if (value !== undefined || !name.startsWith(KEAP_PREFIX)) return value;
    return this.map.get(APIGEE_PREFIX + name.slice(KEAP_PREFIX.length));
  }
}

// ---- numbers ------------------------------------------------------------------------------

interface IntRule {
  min: number;
  max: number;
}
const COUNT: IntRule = { min: 0, max: MAX_COUNT };
const LIMIT: IntRule = { min: 1, max: MAX_COUNT };

/**
 * A whole number from a header value: undefined when blank (unknown) or invalid (with an issue).
 * Combined duplicates ("240, 240") are accepted when they agree.
 */
function intValue(
  ctx: Ctx,
  header: string,
  raw: string | undefined,
  rule: IntRule,
): number | undefined {
  if (raw === undefined) return undefined;
  let text = raw.trim();
  if (text === "") return undefined;
  if (text.includes(",")) {
    const parts = new Set(text.split(",").map((s) => s.trim()));
    if (parts.size !== 1) {
      ctx.issues.push({
        header,
        value: clip(raw),
        reason: "repeated header with differing values",
      });
      return undefined;
    }
    text = [...parts][0] ?? "";
  }
  if (!/^\d+$/.test(text)) {
    ctx.issues.push({ header, value: clip(raw), reason: "not a non-negative whole number" });
    return undefined;
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > rule.max) {
    ctx.issues.push({ header, value: clip(raw), reason: `larger than ${rule.max}` });
    return undefined;
  }
  if (n < rule.min) {
    ctx.issues.push({ header, value: clip(raw), reason: `smaller than ${rule.min}` });
    return undefined;
  }
  return n;
}

/** An absolute reset time that is plausible relative to now, else undefined with an issue. */
function plausibleReset(ctx: Ctx, header: string, raw: string, atMs: number): number | undefined {
  if (
    !Number.isFinite(atMs) ||
    atMs > ctx.nowMs + MAX_RESET_AHEAD_MS ||
    atMs < ctx.nowMs - MAX_EXPIRY_BEHIND_MS
  ) {
    ctx.issues.push({ header, value: clip(raw), reason: "reset time is implausibly far from now" });
    return undefined;
  }
  return atMs;
}

/** Keap `expiry-time`: epoch ms (12-13 digits) or epoch seconds (9-10 digits). */
function expiryValue(ctx: Ctx, header: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const text = raw.trim();
  if (!/^\d+$/.test(text)) {
    ctx.issues.push({ header, value: clip(raw), reason: "not an epoch time" });
    return undefined;
  }
  let atMs: number;
  if (text.length === 9 || text.length === 10) atMs = Number(text) * 1000;
  else if (text.length === 12 || text.length === 13) atMs = Number(text);
  else {
    ctx.issues.push({ header, value: clip(raw), reason: "neither epoch seconds nor epoch ms" });
    return undefined;
  }
  return plausibleReset(ctx, header, raw, atMs);
}

// ---- observations -------------------------------------------------------------------------

/** Observations by policy name; a field already set by an earlier (more specific) source wins. */
class ObservationSet {
  private readonly byName = new Map<string, Observation>();

  add(policy: string, fields: { limit?: number; remaining?: number; resetAtMs?: number }): void {
    if (fields.limit === undefined && fields.remaining === undefined) {
      if (fields.resetAtMs === undefined) return;
    }
    let o = this.byName.get(policy);
    if (o === undefined) {
      o = { policy };
      this.byName.set(policy, o);
    }
    if (o.limit === undefined && fields.limit !== undefined) o.limit = fields.limit;
    if (o.remaining === undefined && fields.remaining !== undefined) o.remaining = fields.remaining;
    if (o.resetAtMs === undefined && fields.resetAtMs !== undefined) o.resetAtMs = fields.resetAtMs;
  }

  /** An exhausted window without a reset of its own admits nothing until the retry. */
  applyRetryAfter(atMs: number): void {
    for (const o of this.byName.values()) {
      if (o.remaining === 0 && o.resetAtMs === undefined) o.resetAtMs = atMs;
    }
  }

  list(): Observation[] {
    return [...this.byName.values()];
  }
}

/**
 * `x-keap-product-<kind>-*`. A window whose unit or interval differs from the profile's (one
 * minute for `throttle`, one day for `quota`) is skipped with an issue: its numbers would not fit.
 */
function parseKeapProduct(
  ctx: Ctx,
  obs: ObservationSet,
  kind: "throttle" | "quota",
  unit: "minute" | "day",
  withExpiry: boolean,
): void {
  const p = `x-keap-product-${kind}-`;
  const raw = (f: string) => ctx.h.get(p + f);
  const unitRaw = raw("time-unit")?.trim().toLowerCase();
  if (unitRaw !== undefined && unitRaw !== "" && unitRaw !== unit) {
    ctx.issues.push({
      header: `${p}time-unit`,
      value: clip(unitRaw),
      reason: `expected "${unit}"; window skipped`,
    });
    return;
  }
  const interval = intValue(ctx, `${p}interval`, raw("interval"), LIMIT);
  if (interval !== undefined && interval !== 1) {
    ctx.issues.push({
      header: `${p}interval`,
      value: String(interval),
      reason: "expected 1; window skipped",
    });
    return;
  }
  const limit = intValue(ctx, `${p}limit`, raw("limit"), LIMIT);
  let remaining = intValue(ctx, `${p}available`, raw("available"), COUNT);
  if (remaining === undefined && limit !== undefined) {
    const used = intValue(ctx, `${p}used`, raw("used"), COUNT);
    if (used !== undefined) remaining = Math.max(0, limit - used);
  }
  const fields: { limit?: number; remaining?: number; resetAtMs?: number } = {};
  if (limit !== undefined) fields.limit = limit;
  if (remaining !== undefined) fields.remaining = remaining;
  if (withExpiry) {
    const at = expiryValue(ctx, `${p}expiry-time`, raw("expiry-time"));
    if (at !== undefined) fields.resetAtMs = at;
  }
  obs.add(kind, fields);
}

const TENANT_POLICY: Readonly<Record<string, string>> = {
  minute: "tenantMinute",
  day: "tenantDay",
};

/** `x-keap-tenant-throttle-*`: one or more windows, pipe-separated, matched by position. */
function parseKeapTenant(ctx: Ctx, obs: ObservationSet): void {
  const p = "x-keap-tenant-throttle-";
  const split = (f: string) => (ctx.h.get(p + f) ?? "").split("|");
  const limits = split("limit");
  const units = split("time-unit");
  const intervals = split("interval");
  const available = split("available");
  const used = split("used");
  const n = Math.max(limits.length, units.length, available.length);
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const limit = intValue(ctx, `${p}limit`, limits[i], LIMIT);
    let remaining = intValue(ctx, `${p}available`, available[i], COUNT);
    if (remaining === undefined && limit !== undefined) {
      const u = intValue(ctx, `${p}used`, used[i], COUNT);
      if (u !== undefined) remaining = Math.max(0, limit - u);
    }
    if (limit === undefined && remaining === undefined) continue;
    const unit = (units[i] ?? "").trim().toLowerCase();
    const policy = Object.hasOwn(TENANT_POLICY, unit) ? TENANT_POLICY[unit] : undefined;
    if (policy === undefined) {
      ctx.issues.push({
        header: `${p}time-unit`,
        value: clip(units[i] ?? ""),
        reason: `window ${i + 1}: unknown time unit; window skipped`,
      });
      continue;
    }
    const interval = intValue(ctx, `${p}interval`, intervals[i], LIMIT);
    if (interval !== undefined && interval !== 1) {
      ctx.issues.push({
        header: `${p}interval`,
        value: String(interval),
        reason: `window ${i + 1}: expected 1; window skipped`,
      });
      continue;
    }
    if (seen.has(policy)) {
      ctx.issues.push({
        header: `${p}time-unit`,
        value: unit,
        reason: `window ${i + 1}: repeated time unit; window skipped`,
      });
      continue;
    }
    seen.add(policy);
    const fields: { limit?: number; remaining?: number } = {};
    if (limit !== undefined) fields.limit = limit;
    if (remaining !== undefined) fields.remaining = remaining;
    obs.add(policy, fields);
  }
}

// ---- Retry-After --------------------------------------------------------------------------

/**
 * Keap's gateway may send a decimal `Retry-After` ("1.5"), which the standard parser refuses:
 * read it here and drop the standard parser's complaint about it.
 */
function decimalRetryAfter(h: HeaderReader, issues: KeapHeaderIssue[]): number | undefined {
  const raw = h.get("retry-after")?.trim();
  if (raw === undefined || !/^\d+\.\d+$/.test(raw)) return undefined;
  const ms = Math.ceil(Number(raw) * 1000);
  if (!Number.isFinite(ms) || ms > MAX_RESET_AHEAD_MS) return undefined;
  const i = issues.findIndex((issue) => issue.header === "retry-after");
  if (i >= 0) issues.splice(i, 1);
  return ms;
}

// ---- helpers ------------------------------------------------------------------------------

function clip(value: unknown): string {
  let s: string;
  try {
    s = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    s = Object.prototype.toString.call(value);
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : clip(err);
}
