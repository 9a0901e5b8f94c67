import { ConfigError, type ConfigIssue } from "../errors.js";
import type { Observation } from "../limiter/index.js";
import { describeValue, optionsObject, unknownOptionIssues } from "../options-check.js";
import { parseSfList } from "./structured-fields.js";

/**
 * Standard rate-limit response headers -> observations for `Limiter.reconcile`, for a client
 * reading a server's answers. Understood:
 * - IETF draft-8 `RateLimit-Policy: "burst";q=10;w=1` and `RateLimit: "burst";r=3;t=1` (the item's
 *   name is the policy's);
 * - draft-7 `RateLimit: limit=10, remaining=3, reset=1` (with `RateLimit-Policy: 10;w=1`), draft-6
 *   `RateLimit-Limit/-Remaining/-Reset` and `X-RateLimit-Limit/-Remaining/-Reset` -> the policy
 *   named by `defaultPolicy` (default "default"); an `X-RateLimit-Reset` is told apart by magnitude
 *   (delay seconds, epoch seconds or epoch ms);
 * - `Retry-After` (seconds or an HTTP date): `retryAfterMs` in the detailed result, and the reset of
 *   every observed policy that has nothing remaining and no reset of its own.
 * A blank value means "unknown" and yields no field (never 0). Malformed, negative, non-integer or
 * implausible values are skipped and reported in `issues`. Never throws.
 */

export type RateLimitHeaderInput =
  | Headers
  | Readonly<Record<string, string | number | readonly string[] | undefined>>;

/** A rate-limit header that was present but could not be read. */
export interface RateLimitHeaderIssue {
  /** The header's name. */
  header: string;
  /** Its value as received. */
  value: string;
  /** Why it was not used. */
  reason: string;
}

/** What `parseRateLimitHeadersDetailed` read from a response's headers. */
export interface ParsedRateLimitHeaders {
  /** One observation per policy the headers describe, for `limiter.reconcile`. */
  observations: Observation[];
  /** From `Retry-After`, relative to `nowMs` (never negative). */
  retryAfterMs?: number;
  /** Headers that were present but could not be read, and why. */
  issues: RateLimitHeaderIssue[];
}

/** Options of `parseRateLimitHeaders` and `parseRateLimitHeadersDetailed`. */
export interface ParseRateLimitHeadersOptions {
  /** Epoch ms that relative resets count from (default `Date.now()`). */
  nowMs?: number;
  /** Policy name for headers that carry none (draft-6, draft-7, X-RateLimit-*); default "default". */
  defaultPolicy?: string;
}

/** Largest limit or remaining count accepted. */
const MAX_COUNT = 1e12;
const DAY_MS = 86_400_000;
/** A reset may lie at most this far ahead of now, and at most this far behind. */
const MAX_RESET_AHEAD_MS = 400 * DAY_MS;
const MAX_RESET_BEHIND_MS = 2 * DAY_MS;

/**
 * Reads a server's rate-limit headers (IETF `RateLimit`/`RateLimit-Policy` drafts 6 to 8,
 * `X-RateLimit-*`, `Retry-After`) into observations for `limiter.reconcile`. Unreadable headers
 * are skipped; `parseRateLimitHeadersDetailed` reports them.
 *
 * @param headers - a `Headers` object or a plain record of header values.
 * @param options - `nowMs` for relative resets, `defaultPolicy` for headers without a policy name.
 * @returns one observation per policy found (empty when there are none).
 * @throws ConfigError for an unknown option or a bad option value (never for the headers).
 *
 * @example
 * ```ts
 * const res = await fetch(url);
 * await limiter.reconcile(key, parseRateLimitHeaders(res.headers));
 * ```
 */
export function parseRateLimitHeaders(
  headers: RateLimitHeaderInput,
  options?: ParseRateLimitHeadersOptions,
): Observation[] {
  return parseRateLimitHeadersDetailed(headers, options).observations;
}

/**
 * As `parseRateLimitHeaders`, with `Retry-After` and the headers that could not be read.
 *
 * @param headers - a `Headers` object or a plain record of header values.
 * @param options - `nowMs` for relative resets, `defaultPolicy` for headers without a policy name.
 * @returns the observations, `retryAfterMs` and the issues found.
 * @throws ConfigError for an unknown option or a bad option value (never for the headers).
 */
export function parseRateLimitHeadersDetailed(
  headers: RateLimitHeaderInput,
  options: ParseRateLimitHeadersOptions = {},
): ParsedRateLimitHeaders {
  const { nowMs, fallbackName } = readParseOptions(options);
  const issues: RateLimitHeaderIssue[] = [];
  const obs = new ObservationSet();
  let retryAfterMs: number | undefined;
  try {
    const ctx: Ctx = { h: readHeaders(headers, issues), issues, nowMs };
    parseDraft8(ctx, obs);
    parseNumbered(ctx, obs, "ratelimit-", fallbackName, false);
    parseNumbered(ctx, obs, "x-ratelimit-", fallbackName, true);
    retryAfterMs = parseRetryAfter(ctx);
    if (retryAfterMs !== undefined) obs.applyRetryAfter(nowMs + retryAfterMs);
  } catch (err) {
    issues.push({ header: "", value: "", reason: `unexpected input (${describe(err)})` });
  }
  const result: ParsedRateLimitHeaders = { observations: obs.list(), issues };
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  return result;
}

const OPTION_NAMES = ["nowMs", "defaultPolicy"] as const;

/**
 * The caller's options, checked: a misspelt or mistyped option is the caller's bug and throws,
 * while anything wrong in the headers (the server's input) only becomes an issue.
 */
function readParseOptions(options: unknown): { nowMs: number; fallbackName: string } {
  const opts = optionsObject(options, "parseRateLimitHeaders", true);
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(opts, OPTION_NAMES, issues);
  const { nowMs, defaultPolicy } = opts;
  if (nowMs !== undefined && !(typeof nowMs === "number" && Number.isFinite(nowMs))) {
    issues.push({
      path: "nowMs",
      message: `nowMs must be a finite number of epoch ms (got ${describeValue(nowMs)})`,
    });
  }
  if (defaultPolicy !== undefined && (typeof defaultPolicy !== "string" || defaultPolicy === "")) {
    issues.push({
      path: "defaultPolicy",
      message: `defaultPolicy must be a non-empty policy name (got ${describeValue(defaultPolicy)})`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    nowMs: nowMs === undefined ? Date.now() : (nowMs as number),
    fallbackName: defaultPolicy === undefined ? "default" : (defaultPolicy as string),
  };
}

// ---- input --------------------------------------------------------------------------------

interface Ctx {
  readonly h: ReadonlyMap<string, string>;
  readonly issues: RateLimitHeaderIssue[];
  readonly nowMs: number;
}

/** Lower-cased header names to values; repeated headers are combined with ", " as HTTP does. */
function readHeaders(input: unknown, issues: RateLimitHeaderIssue[]): Map<string, string> {
  const map = new Map<string, string>();
  if (input === null || typeof input !== "object") return map;
  const add = (name: string, value: string) => {
    const k = name.toLowerCase();
    const prev = map.get(k);
    map.set(k, prev === undefined ? value : `${prev}, ${value}`);
  };
  const h = input as { forEach?: unknown; get?: unknown };
  if (typeof h.forEach === "function" && typeof h.get === "function") {
    (input as Headers).forEach((value, name) => {
      if (typeof value === "string" && typeof name === "string") add(name, value);
    });
    return map;
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
  return map;
}

// ---- numbers ------------------------------------------------------------------------------

/**
 * A whole number in [min, MAX_COUNT] from a header value: undefined when blank (unknown) or
 * invalid (with an issue). Combined duplicates ("240, 240") are accepted when they agree.
 */
function intValue(
  ctx: Ctx,
  header: string,
  raw: string | undefined,
  min: number,
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
  if (!Number.isSafeInteger(n) || n > MAX_COUNT) {
    ctx.issues.push({ header, value: clip(raw), reason: `larger than ${MAX_COUNT}` });
    return undefined;
  }
  if (n < min) {
    ctx.issues.push({ header, value: clip(raw), reason: `smaller than ${min}` });
    return undefined;
  }
  return n;
}

function plausibleReset(ctx: Ctx, header: string, raw: string, atMs: number): number | undefined {
  if (
    !Number.isFinite(atMs) ||
    atMs > ctx.nowMs + MAX_RESET_AHEAD_MS ||
    atMs < ctx.nowMs - MAX_RESET_BEHIND_MS
  ) {
    ctx.issues.push({ header, value: clip(raw), reason: "reset time is implausibly far from now" });
    return undefined;
  }
  return atMs;
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

type Fields = { limit?: number; remaining?: number; resetAtMs?: number };

/** Observations by policy name; a field already set by an earlier (more specific) source wins. */
class ObservationSet {
  private readonly byName = new Map<string, Observation>();

  add(policy: string, fields: Fields): void {
    if (
      fields.limit === undefined &&
      fields.remaining === undefined &&
      fields.resetAtMs === undefined
    ) {
      return;
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

  /** An exhausted policy without a reset of its own admits nothing until the retry. */
  applyRetryAfter(atMs: number): void {
    for (const o of this.byName.values()) {
      if (o.remaining === 0 && o.resetAtMs === undefined) o.resetAtMs = atMs;
    }
  }

  list(): Observation[] {
    return [...this.byName.values()];
  }
}

// ---- the formats --------------------------------------------------------------------------

/** Draft-7 `RateLimit: limit=100, remaining=50, reset=30` rather than a draft-8 list. */
function isDictionary(raw: string): boolean {
  return /^\s*(limit|remaining|reset)\s*=/i.test(raw);
}

/** Draft-8: `RateLimit-Policy: "burst";q=100;w=60` and `RateLimit: "burst";r=50;t=30`. */
function parseDraft8(ctx: Ctx, obs: ObservationSet): void {
  const policyRaw = ctx.h.get("ratelimit-policy");
  const stateRaw = ctx.h.get("ratelimit");
  const bad = (header: string) => (member: string) =>
    ctx.issues.push({ header, value: clip(member), reason: "member has no valid name" });
  const limits = new Map<string, number>();
  // A draft-7 policy list (`10;w=1`) has no names: its items are numbers, not strings or tokens.
  if (policyRaw !== undefined && !/^\s*\d/.test(policyRaw)) {
    for (const item of parseSfList(policyRaw, bad("ratelimit-policy"))) {
      const q = intValue(ctx, "ratelimit-policy", item.params.get("q"), 1);
      if (q !== undefined && !limits.has(item.name)) limits.set(item.name, q);
    }
  }
  const states = new Map<string, Fields>();
  if (stateRaw !== undefined && !isDictionary(stateRaw)) {
    for (const item of parseSfList(stateRaw, bad("ratelimit"))) {
      if (states.has(item.name)) continue;
      const s: Fields = {};
      const r = intValue(ctx, "ratelimit", item.params.get("r"), 0);
      if (r !== undefined) s.remaining = r;
      const t = delayValue(ctx, "ratelimit", item.params.get("t"));
      if (t !== undefined) s.resetAtMs = t;
      states.set(item.name, s);
    }
  }
  for (const name of new Set([...limits.keys(), ...states.keys()])) {
    const fields: Fields = { ...states.get(name) };
    const limit = limits.get(name);
    if (limit !== undefined) fields.limit = limit;
    obs.add(name, fields);
  }
}

/**
 * `<prefix>Limit`, `<prefix>Remaining`, `<prefix>Reset` (and for `RateLimit-`, a draft-7
 * dictionary in `RateLimit` and a draft-7 `RateLimit-Policy`) -> one policy. `RateLimit-Limit` may
 * carry a policy list (`10, 10;w=1`): its first number counts.
 */
function parseNumbered(
  ctx: Ctx,
  obs: ObservationSet,
  prefix: "ratelimit-" | "x-ratelimit-",
  policy: string,
  byMagnitude: boolean,
): void {
  let limitRaw = ctx.h.get(`${prefix}limit`);
  let remainingRaw = ctx.h.get(`${prefix}remaining`);
  let resetRaw = ctx.h.get(`${prefix}reset`);
  if (!byMagnitude) {
    const combined = ctx.h.get("ratelimit");
    if (combined !== undefined && isDictionary(combined)) {
      for (const part of combined.split(",")) {
        const eq = part.indexOf("=");
        if (eq < 0) continue;
        const key = part.slice(0, eq).trim().toLowerCase();
        const value = part.slice(eq + 1);
        if (key === "limit") limitRaw ??= value;
        else if (key === "remaining") remainingRaw ??= value;
        else if (key === "reset") resetRaw ??= value;
      }
    }
    const policyRaw = ctx.h.get("ratelimit-policy");
    if (policyRaw !== undefined && /^\s*\d/.test(policyRaw)) limitRaw ??= policyRaw;
  }
  const firstNumber = (raw: string | undefined) =>
    raw === undefined ? undefined : (raw.split(",")[0] ?? "").split(";")[0];
  const fields: Fields = {};
  const limit = intValue(ctx, `${prefix}limit`, firstNumber(limitRaw), 1);
  if (limit !== undefined) fields.limit = limit;
  const remaining = intValue(ctx, `${prefix}remaining`, remainingRaw, 0);
  if (remaining !== undefined) fields.remaining = remaining;
  const reset = byMagnitude
    ? resetByMagnitude(ctx, `${prefix}reset`, resetRaw)
    : delayValue(ctx, `${prefix}reset`, resetRaw);
  if (reset !== undefined) fields.resetAtMs = reset;
  obs.add(policy, fields);
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
