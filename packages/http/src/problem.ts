import type { Decision } from "@sluice/core";

/** RFC 9457 media type of the default error answers. */
export const PROBLEM_TYPE = "application/problem+json";

/** Retry-After of the default 503 answer to a store outage: a short, honest "try again soon". */
export const OUTAGE_RETRY_AFTER_S = 1;

/** Body of the default 429 answer (RFC 9457 problem details). */
export function limitedProblem(decision: Decision): string {
  const wait = decision.retryAfterMs;
  const detail = Number.isFinite(wait)
    ? `Rate limit exceeded; retry in ${Math.max(0, Math.ceil(wait / 1000))} s.`
    : "Rate limit exceeded; this request costs more than the limit allows.";
  return JSON.stringify({
    type: "about:blank",
    title: "Too Many Requests",
    status: 429,
    detail,
    blockedBy: decision.blockedBy,
  });
}

const OUTAGE_BODY = JSON.stringify({
  type: "about:blank",
  title: "Service Unavailable",
  status: 503,
  detail: "The rate limiter cannot decide right now; retry shortly.",
});

/** Body of the default 503 answer to an error reaching the middleware (RFC 9457). */
export function outageProblem(): string {
  return OUTAGE_BODY;
}
