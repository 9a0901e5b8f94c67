import type { IncomingMessage, ServerResponse } from "node:http";
import type { Decision } from "@sluice/core";
import type { Context, MiddlewareHandler } from "hono";
import type { Charge } from "./charge.js";
import { isStoreError, RateLimitFlow, type Transport } from "./decide.js";
import { disconnectSignal, settleWhenDone } from "./node-response.js";
import { checkOptions, type LimitedInfo, type RateLimitOptionsBase } from "./options.js";
import { limitedProblem, OUTAGE_RETRY_AFTER_S, outageProblem, PROBLEM_TYPE } from "./problem.js";

declare module "hono" {
  interface ContextVariableMap {
    /** The rate-limit decision that admitted this request (set by @sluice/http). */
    rateLimit?: Decision;
  }
}

/** Options of the Hono middleware `rateLimit` (see `RateLimitOptionsBase`). */
export interface HonoRateLimitOptions extends RateLimitOptionsBase<Context> {
  /** Answers a refused request. Default: 429 problem+json with the rate-limit headers. */
  onLimited?: (c: Context, info: LimitedInfo) => Response | Promise<Response>;
  /** Answers when deciding failed. Default: 503 problem+json for a store error, else the error. */
  onError?: (error: unknown, c: Context) => Response | Promise<Response>;
}

/** What @hono/node-server puts in `c.env`: the node request and response. */
interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

function nodeBindings(c: Context): NodeBindings | undefined {
  const env = c.env as NodeBindings | undefined;
  return env !== null && typeof env === "object" && env.incoming !== undefined ? env : undefined;
}

const transport: Transport<Context> = {
  // Only a node server tells the peer's address; elsewhere pass `key`.
  address: (c) => nodeBindings(c)?.incoming?.socket.remoteAddress,
  disconnectSignal: (c) => {
    const node = nodeBindings(c);
    if (node?.incoming !== undefined) return disconnectSignal(node.incoming);
    return { signal: c.req.raw.signal, done() {} };
  },
};

function setHeaders(c: Context, headers: Readonly<Record<string, string>>): void {
  for (const name in headers) c.header(name, headers[name]);
}

/** Hono middleware: `app.use(rateLimit({ limiter }))`. */
export function rateLimit(options: HonoRateLimitOptions): MiddlewareHandler {
  const settings = checkOptions<Context>(options);
  const flow = new RateLimitFlow(settings, transport);
  const onLimited = options.onLimited;
  const onError = options.onError;
  return async (c, next) => {
    const outcome = await flow.decide(c);
    switch (outcome.kind) {
      case "skip":
        await next();
        return;
      case "admit": {
        c.set("rateLimit", outcome.decision);
        const charge: Charge | undefined = outcome.charge;
        const node = charge === undefined ? undefined : nodeBindings(c);
        if (charge !== undefined && node?.incoming !== undefined && node.outgoing !== undefined) {
          settleWhenDone(node.incoming, node.outgoing, charge);
        }
        try {
          await next();
        } finally {
          // Elsewhere than node the response leaves once the handlers are done.
          if (charge !== undefined && node === undefined) charge.finish(c.res.status);
        }
        // Set after the handlers: a handler returning its own Response would drop earlier ones.
        if (outcome.headers !== undefined) setHeaders(c, outcome.headers);
        return;
      }
      case "limit":
        if (onLimited !== undefined) {
          setHeaders(c, outcome.headers);
          return onLimited(c, { decision: outcome.decision, headers: outcome.headers });
        }
        return c.body(limitedProblem(outcome.decision), 429, {
          ...outcome.headers,
          "Content-Type": PROBLEM_TYPE,
        });
      case "fail":
        if (onError !== undefined) return onError(outcome.error, c);
        if (!isStoreError(outcome.error)) throw outcome.error;
        return c.body(outageProblem(), 503, {
          "Retry-After": String(OUTAGE_RETRY_AFTER_S),
          "Content-Type": PROBLEM_TYPE,
        });
      case "gone":
        return new Response(null, { status: 499 });
    }
  };
}
