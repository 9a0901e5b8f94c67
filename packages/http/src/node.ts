import type { IncomingMessage, ServerResponse } from "node:http";
import type { Decision } from "@sluice/core";
import { isStoreError, RateLimitFlow, type Transport } from "./decide.js";
import {
  disconnectSignal,
  sendOutage,
  sendProblem,
  setHeaders,
  settleWhenDone,
} from "./node-response.js";
import { checkOptions, type LimitedInfo, type RateLimitOptionsBase } from "./options.js";
import { limitedProblem } from "./problem.js";

declare module "http" {
  interface IncomingMessage {
    /** The rate-limit decision that admitted this request (set by @sluice/http). */
    rateLimit?: Decision;
  }
}

/** Options of the `node:http` `rateLimit` (see `RateLimitOptionsBase`). */
export interface NodeRateLimitOptions extends RateLimitOptionsBase<IncomingMessage> {
  /** Answers a refused request (the rate-limit headers are already set). Default: 429 problem+json. */
  onLimited?: (req: IncomingMessage, res: ServerResponse, info: LimitedInfo) => unknown;
  /** Answers when deciding failed. Default: 503 problem+json for a store error; others reject. */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => unknown;
}

/** `true` when the middleware already answered the request. */
export type NodeRateLimit = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

const transport: Transport<IncomingMessage> = {
  address: (req) => req.socket.remoteAddress,
  disconnectSignal,
};

/**
 * Rate limiting for a plain `node:http` server:
 * `if (await limited(req, res)) return;` at the top of the request handler.
 */
export function rateLimit(options: NodeRateLimitOptions): NodeRateLimit {
  const settings = checkOptions<IncomingMessage>(options);
  const flow = new RateLimitFlow(settings, transport);
  const onLimited = options.onLimited;
  const onError = options.onError;
  return async (req, res) => {
    const outcome = await flow.decide(req);
    switch (outcome.kind) {
      case "skip":
        return false;
      case "admit":
        setHeaders(res, outcome.headers);
        req.rateLimit = outcome.decision;
        if (outcome.charge !== undefined) settleWhenDone(req, res, outcome.charge);
        return false;
      case "limit":
        setHeaders(res, outcome.headers);
        if (onLimited !== undefined) {
          await onLimited(req, res, { decision: outcome.decision, headers: outcome.headers });
        } else sendProblem(res, 429, limitedProblem(outcome.decision));
        return true;
      case "fail":
        if (onError !== undefined) await onError(outcome.error, req, res);
        else if (isStoreError(outcome.error)) sendOutage(res);
        else throw outcome.error;
        return true;
      case "gone":
        return true;
    }
  };
}
