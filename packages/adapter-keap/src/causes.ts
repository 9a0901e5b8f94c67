import type { Observation } from "@sluice/core";

/**
 * Why Keap answered 429 (docs/keap.md "429 bodies"):
 * - `spike`: SpikeArrest (`SpikeArrestViolation`, or the bare `Quota Exceeded` body while no
 *   counted window is exhausted);
 * - `throttle`: the product per-minute throttle;
 * - `quota`: the product daily quota;
 * - `tenantMinute` / `tenantDay`: a tenant window;
 * - `unknown`: a 429 without a body or header that tells.
 */
export type KeapThrottleCause =
  | "spike"
  | "throttle"
  | "quota"
  | "tenantMinute"
  | "tenantDay"
  | "unknown";

/** A rate read from a spike fault message: so many messages per period. */
export interface KeapMessageRate {
  /** Messages allowed per period. */
  messagesPerPeriod: number;
  /** The period (ms). */
  periodMs: number;
}

/** What a Keap 429 response says about why it was throttled. */
export interface Keap429 {
  /** Which limit refused the request. */
  cause: KeapThrottleCause;
  /** From a spike fault string, when present and sane. */
  messageRate?: KeapMessageRate;
}

/** Largest body read to classify a 429. */
export const MAX_429_BODY = 64 * 1024;

/**
 * Classifies a 429 from its body text and the observations parsed from its headers. The body
 * names spike arrest outright; for a quota fault or the bare body, the exhausted window in the
 * headers tells which counter refused.
 */
export function classify429(body: string, observations: readonly Observation[]): Keap429 {
  const parsed = parseBody(body);
  // XML-RPC answers its thread throttle with HTTP 200 and a fault: a throttle, not a success.
  if (parsed.kind === "threads") return { cause: "throttle" };
  if (parsed.kind === "spike") {
    const result: Keap429 = { cause: "spike" };
    const rate = parseMessageRate(parsed.text);
    if (rate) result.messageRate = rate;
    return result;
  }
  const exhausted = exhaustedWindow(observations);
  if (exhausted) return { cause: exhausted };
  if (parsed.kind === "quotaFault") return { cause: "throttle" };
  // The bare `Quota Exceeded` body with every counted window open: Keap's own answer to it is
  // "you are sending requests too quickly" (SpikeArrest, docs/keap.md "Why clients see 429").
  if (parsed.kind === "bare") return { cause: "spike" };
  return { cause: "unknown" };
}

type Body = { kind: "spike"; text: string } | { kind: "quotaFault" | "bare" | "threads" | "other" };

/** The XML-RPC fault Keap's legacy API sends (with HTTP 200) when it throttles. */
const THREADS_THROTTLED = /Maximum number of threads throttled/i;

/**
 * True when a response that is not a 429 still says "throttled": an XML-RPC fault "Maximum number
 * of threads throttled" (HTTP 200), or an Apigee rate-limit fault in a 5xx body (the old Edge
 * default answered SpikeArrest and Quota violations with 500).
 */
export function isDisguisedThrottle(status: number, body: string): boolean {
  if (status >= 200 && status < 300) return THREADS_THROTTLED.test(body);
  if (status >= 500 && status < 600) {
    const kind = parseBody(body).kind;
    return kind === "spike" || kind === "quotaFault";
  }
  return false;
}

function parseBody(raw: string): Body {
  // A byte-order mark (and whitespace) before the JSON is allowed by some gateways' encoders.
  const body = raw.replace(/^[\uFEFF\s]+/, "");
  if (body.startsWith("<"))
    return THREADS_THROTTLED.test(body) ? { kind: "threads" } : { kind: "other" };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: "other" };
  }
  if (json === null || typeof json !== "object") return { kind: "other" };
  const fault = (json as { fault?: unknown }).fault;
  if (fault !== null && typeof fault === "object") {
    const f = fault as { faultstring?: unknown; detail?: { errorcode?: unknown } | null };
    const code = typeof f.detail?.errorcode === "string" ? f.detail.errorcode : "";
    const text = typeof f.faultstring === "string" ? f.faultstring : "";
    if (/SpikeArrestViolation/i.test(code) || /^Spike arrest violation/i.test(text)) {
      return { kind: "spike", text };
    }
    if (/QuotaViolation/i.test(code) || /quota violation/i.test(text)) {
      return { kind: "quotaFault" };
    }
    return { kind: "other" };
  }
  const o = json as { code?: unknown; message?: unknown };
  if (String(o.code) === "429" || /quota exceeded/i.test(String(o.message ?? ""))) {
    return { kind: "bare" };
  }
  return { kind: "other" };
}

/** The counted window the headers report as used up, daily ones first. */
function exhaustedWindow(observations: readonly Observation[]): KeapThrottleCause | undefined {
  const zero = new Set(observations.filter((o) => o.remaining === 0).map((o) => o.policy));
  for (const name of ["quota", "tenantDay", "throttle", "tenantMinute"] as const) {
    if (zero.has(name)) return name;
  }
  return undefined;
}

/**
 * `MessageRate{messagesPerPeriod=5, periodInMicroseconds=5000000, maxBurstMessageCount=1.0}`
 * -> `{ messagesPerPeriod: 5, periodMs: 5000 }`; undefined when absent or implausible. A split
 * count may be a decimal (`messagesPerPeriod=4.1666`), a period any whole number of microseconds
 * (`6500000`). How the period is read is `perSecond` (pacing.ts).
 */
export function parseMessageRate(text: string): KeapMessageRate | undefined {
  const m = /MessageRate\{([^}]{0,300})\}/.exec(text);
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[1]!.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const messages = decimal(fields.get("messagesPerPeriod"));
  const micros = decimal(fields.get("periodInMicroseconds"));
  if (messages === undefined || messages <= 0 || messages > 1e6) return undefined;
  if (micros === undefined || micros < 1000 || micros > 3.6e9) return undefined;
  return { messagesPerPeriod: messages, periodMs: micros / 1000 };
}

function decimal(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}
