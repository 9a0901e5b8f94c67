import type { Decision } from "@sluice/core";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { isStoreError, type Outcome, RateLimitFlow, type Transport } from "./decide.js";
import {
  disconnectSignal,
  sendOutage,
  sendProblem,
  setHeaders,
  settleWhenDone,
} from "./node-response.js";
import { checkOptions, type LimitedInfo, type RateLimitOptionsBase } from "./options.js";
import { limitedProblem } from "./problem.js";

declare global {
  namespace Express {
    interface Request {
      /** The rate-limit decision that admitted this request (set by @sluice/http). */
      rateLimit?: Decision;
    }
  }
}

/** Options of the Express middleware `rateLimit` (see `RateLimitOptionsBase`). */
export interface ExpressRateLimitOptions extends RateLimitOptionsBase<Request> {
  /** Answers a refused request (the rate-limit headers are already set). Default: 429 problem+json. */
  onLimited?: (req: Request, res: Response, next: NextFunction, info: LimitedInfo) => unknown;
  /** Answers when deciding failed. Default: 503 problem+json for a store error, else `next(error)`. */
  onError?: (error: unknown, req: Request, res: Response, next: NextFunction) => unknown;
}

const transport: Transport<Request> = {
  // req.ip honours Express's "trust proxy" setting; without it, it is the socket's address.
  address: (req) => req.ip ?? req.socket.remoteAddress,
  disconnectSignal,
};

/** Express middleware: `app.use(rateLimit({ limiter }))`. */
export function rateLimit(options: ExpressRateLimitOptions): RequestHandler {
  const settings = checkOptions<Request>(options);
  const flow = new RateLimitFlow(settings, transport);
  const onLimited = options.onLimited;
  const onError = options.onError;
  /** Answers an outcome; a promise when a user callback answers (what it throws goes to next). */
  const apply = (
    outcome: Outcome,
    req: Request,
    res: Response,
    next: NextFunction,
  ): undefined | Promise<unknown> => {
    switch (outcome.kind) {
      case "skip":
        next();
        return;
      case "admit":
        setHeaders(res, outcome.headers);
        req.rateLimit = outcome.decision;
        if (outcome.charge !== undefined) settleWhenDone(req, res, outcome.charge);
        next();
        return;
      case "limit":
        setHeaders(res, outcome.headers);
        if (onLimited !== undefined) {
          const info = { decision: outcome.decision, headers: outcome.headers };
          return Promise.resolve(onLimited(req, res, next, info));
        }
        sendProblem(res, 429, limitedProblem(outcome.decision));
        return;
      case "fail":
        if (onError !== undefined) return Promise.resolve(onError(outcome.error, req, res, next));
        if (isStoreError(outcome.error)) sendOutage(res);
        else next(outcome.error);
        return;
      case "gone":
        return;
    }
  };
  // The take's promise carries the answer: no async function or second promise per request.
  return (req, res, next) => {
    flow.decideThen(req, (outcome) => apply(outcome, req, res, next)).catch(next);
  };
}
