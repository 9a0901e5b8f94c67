import type { Observation } from "@sluice/core";

/**
 * Rate-limit response headers -> observations for `Limiter.reconcile`.
 *
 * Understood (Keap's response headers (docs/keap.md) and "Other header conventions"):
 * - `x-keap-product-throttle-*` -> policy `throttle`; `x-keap-product-quota-*` -> `quota`
 *   (`expiry-time` in epoch ms, or epoch seconds when it has 9 or 10 digits);
 * - `x-keap-tenant-throttle-*`, pipe-separated windows, by time unit: minute -> `tenantMinute`,
 *   day -> `tenantDay` (one window or none is fine);
 * - IETF `RateLimit-Policy` / `RateLimit` (the policy name is the item's name),
 *   older `RateLimit-Limit/-Remaining/-Reset` and `X-RateLimit-Limit/-Remaining/-Reset` -> policy
 *   `default` (no Keap policy has that name: route or rename it yourself if you need it);
 * - `Retry-After` (seconds or an HTTP date) -> `retryAfterMs`.
 *
 * A blank value means "unknown" and yields no field (never 0). Malformed, negative, non-integer or
 * implausible values are skipped and reported in `issues`. Never throws.
 */

export type KeapHeadersInput =
  | Headers
  | Record<string, string | readonly string[] | string[] | undefined>;

export interface KeapHeaderIssue {
  header: string;
  value: string;
  reason: string;
}

export interface KeapHeadersResult {
  observations: Observation[];
  /** From `Retry-After`, relative to `nowMs` (never negative). */
  retryAfterMs?: number;
  issues: KeapHeaderIssue[];
}

export interface ParseKeapHeadersOptions {
  /** Epoch ms used for relative resets and plausibility checks (default `Date.now()`). */
  nowMs?: number;
}

/** Largest limit or remaining count accepted. */
const MAX_COUNT = 1e12;
const DAY_MS = 86_400_000;
/** A reset may lie at most this far ahead of now, and an expiry at most this far behind. */
const MAX_RESET_AHEAD_MS = 400 * DAY_MS;
const MAX_EXPIRY_BEHIND_MS = 2 * DAY_MS;
const MAX_NAME_LENGTH = 200;

/** Observations for `reconcile`; see `parseKeapHeadersDetailed` for `Retry-After` and issues. */
export function parseKeapHeaders(
  headers: KeapHeadersInput,
  options?: ParseKeapHeadersOptions,
): Observation[] {
  return parseKeapHeadersDetailed(headers, options).observations;
}

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
    parseIetf(ctx, obs);
    parseOlderDrafts(ctx, obs, "ratelimit-", false);
    parseOlderDrafts(ctx, obs, "x-ratelimit-", true);
    retryAfterMs = parseRetryAfter(ctx);
  } catch (err) {
    issues.push({ header: "", value: "", reason: `unexpected input (${describe(err)})` });
  }
  const result: KeapHeadersResult = { observations: obs.list(), issues };
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  return result;
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

  get(name: string): string | undefined {
    return this.map.get(name);
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

/** Seconds from now (decimals allowed), as an absolute epoch ms. */
function delayValue(ctx: Ctx, header: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const text = raw.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) {
    ctx.issues.push({ header, value: clip(raw), reason: "not a number of seconds" });
    return undefined;
  }
  return plausibleReset(ctx, header, raw, ctx.nowMs + Math.ceil(Number(text) * 1000));
}

/** `X-RateLimit-Reset`: delay seconds, epoch seconds or epoch ms, told apart by magnitude. */
function resetByMagnitude(ctx: Ctx, header: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const text = raw.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) {
    ctx.issues.push({ header, value: clip(raw), reason: "not a number" });
    return undefined;
  }
  const n = Number(text);
  // Below 1e9 s (~31 years) it is a delay; up to 1e11 epoch seconds (year 5138); then epoch ms.
  if (n < 1e9) return delayValue(ctx, header, raw);
  if (n < 1e11) return plausibleReset(ctx, header, raw, Math.ceil(n * 1000));
  return plausibleReset(ctx, header, raw, Math.ceil(n));
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

// ---- IETF structured fields ---------------------------------------------------------------

interface SfItem {
  name: string;
  params: Map<string, string>;
}

/** Splits on `sep` outside double-quoted strings. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === "\\" && i + 1 < text.length) {
      cur += c + text[i + 1];
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && c === sep) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unquote(text: string): string | undefined {
  const t = text.trim();
  if (/^"(?:[^"\\]|\\.)*"$/.test(t)) return t.slice(1, -1).replace(/\\(.)/g, "$1");
  if (/^[A-Za-z*][A-Za-z0-9_\-.:%*/]*$/.test(t)) return t;
  return undefined;
}

/** A lenient Structured Field list: `"name";k=v;k=v, ...`. Bad members are reported and skipped. */
function sfList(ctx: Ctx, header: string, raw: string): SfItem[] {
  const items: SfItem[] = [];
  for (const member of splitOutsideQuotes(raw, ",")) {
    if (member.trim() === "") continue;
    const [head = "", ...rest] = splitOutsideQuotes(member, ";");
    const name = unquote(head);
    if (name === undefined || name === "" || name.length > MAX_NAME_LENGTH) {
      ctx.issues.push({ header, value: clip(member), reason: "member has no valid name" });
      continue;
    }
    const params = new Map<string, string>();
    for (const param of rest) {
      const eq = param.indexOf("=");
      const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? "" : (unquote(param.slice(eq + 1)) ?? param.slice(eq + 1).trim());
      if (key !== "") params.set(key, value);
    }
    items.push({ name, params });
  }
  return items;
}

/** `RateLimit-Policy: "burst";q=100;w=60` and `RateLimit: "burst";r=50;t=30`. */
function parseIetf(ctx: Ctx, obs: ObservationSet): void {
  const policyRaw = ctx.h.get("ratelimit-policy");
  const stateRaw = ctx.h.get("ratelimit");
  const limits = new Map<string, number>();
  if (policyRaw !== undefined) {
    for (const item of sfList(ctx, "ratelimit-policy", policyRaw)) {
      const q = intValue(ctx, "ratelimit-policy", item.params.get("q"), LIMIT);
      if (q !== undefined && !limits.has(item.name)) limits.set(item.name, q);
    }
  }
  const state = new Map<string, { remaining?: number; resetAtMs?: number }>();
  if (stateRaw !== undefined && !isDraftDictionary(stateRaw)) {
    for (const item of sfList(ctx, "ratelimit", stateRaw)) {
      if (state.has(item.name)) continue;
      const s: { remaining?: number; resetAtMs?: number } = {};
      const r = intValue(ctx, "ratelimit", item.params.get("r"), COUNT);
      if (r !== undefined) s.remaining = r;
      const t = delayValue(ctx, "ratelimit", item.params.get("t"));
      if (t !== undefined) s.resetAtMs = t;
      state.set(item.name, s);
    }
  }
  for (const name of new Set([...limits.keys(), ...state.keys()])) {
    const fields: { limit?: number; remaining?: number; resetAtMs?: number } = {
      ...state.get(name),
    };
    const limit = limits.get(name);
    if (limit !== undefined) fields.limit = limit;
    obs.add(name, fields);
  }
}

/** Draft-07 style `RateLimit: limit=100, remaining=50, reset=30` (read by `parseOlderDrafts`). */
function isDraftDictionary(raw: string): boolean {
  return /^\s*(limit|remaining|reset)\s*=/i.test(raw);
}

/**
 * `<prefix>Limit`, `<prefix>Remaining`, `<prefix>Reset` -> policy `default`. For `RateLimit-*`
 * the reset is delay seconds; for `X-RateLimit-*` it is told apart by magnitude. `RateLimit-Limit`
 * may carry a policy list (`10, 10;w=1`): its first number counts. A draft-07
 * `RateLimit: limit=.., remaining=.., reset=..` dictionary is read here too.
 */
function parseOlderDrafts(ctx: Ctx, obs: ObservationSet, prefix: string, byMagnitude: boolean) {
  let limitRaw = ctx.h.get(`${prefix}limit`);
  let remainingRaw = ctx.h.get(`${prefix}remaining`);
  let resetRaw = ctx.h.get(`${prefix}reset`);
  if (!byMagnitude) {
    const combined = ctx.h.get("ratelimit");
    if (combined !== undefined && isDraftDictionary(combined)) {
      for (const part of combined.split(",")) {
        const [k = "", v = ""] = part.split("=");
        const key = k.trim().toLowerCase();
        if (key === "limit") limitRaw ??= v;
        else if (key === "remaining") remainingRaw ??= v;
        else if (key === "reset") resetRaw ??= v;
      }
    }
  }
  const firstNumber = (raw: string | undefined) =>
    raw === undefined ? undefined : (raw.split(",")[0] ?? "").split(";")[0];
  const fields: { limit?: number; remaining?: number; resetAtMs?: number } = {};
  const limit = intValue(ctx, `${prefix}limit`, firstNumber(limitRaw), LIMIT);
  if (limit !== undefined) fields.limit = limit;
  const remaining = intValue(ctx, `${prefix}remaining`, remainingRaw, COUNT);
  if (remaining !== undefined) fields.remaining = remaining;
  const reset = byMagnitude
    ? resetByMagnitude(ctx, `${prefix}reset`, resetRaw)
    : delayValue(ctx, `${prefix}reset`, resetRaw);
  if (reset !== undefined) fields.resetAtMs = reset;
  obs.add("default", fields);
}

/** `Retry-After`: delay seconds or an HTTP date; a past date is 0. */
function parseRetryAfter(ctx: Ctx): number | undefined {
  const raw = ctx.h.get("retry-after");
  if (raw === undefined || raw.trim() === "") return undefined;
  const text = raw.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (/[a-z]/i.test(text) && /\d{4}/.test(text)) ms = Date.parse(text) - ctx.nowMs;
  else ms = Number.NaN;
  if (!Number.isFinite(ms)) {
    ctx.issues.push({
      header: "retry-after",
      value: clip(raw),
      reason: "neither seconds nor a date",
    });
    return undefined;
  }
  if (ms > MAX_RESET_AHEAD_MS) {
    ctx.issues.push({ header: "retry-after", value: clip(raw), reason: "implausibly far ahead" });
    return undefined;
  }
  return Math.max(0, ms);
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
