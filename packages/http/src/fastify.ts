import type { Decision } from "@sluice/core";
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onResponseHookHandler,
} from "fastify";
import type { Charge } from "./charge.js";
import { isStoreError, type Outcome, RateLimitFlow, type Transport } from "./decide.js";
import { disconnectSignal, settleWhenDone } from "./node-response.js";
import { checkOptions, type LimitedInfo, type RateLimitOptionsBase } from "./options.js";
import { limitedProblem, OUTAGE_RETRY_AFTER_S, outageProblem, PROBLEM_TYPE } from "./problem.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The rate-limit decision that admitted this request (set by @sluice/http). */
    rateLimit?: Decision;
  }
  interface FastifyContextConfig {
    /** `false` exempts a route from the rate limit. */
    rateLimit?: false;
  }
}

/** Options of the Fastify plugin `rateLimit` (see `RateLimitOptionsBase`). */
export interface FastifyRateLimitOptions extends RateLimitOptionsBase<FastifyRequest> {
  /** Answers a refused request (the rate-limit headers are already set). Default: 429 problem+json. */
  onLimited?: (request: FastifyRequest, reply: FastifyReply, info: LimitedInfo) => unknown;
  /** Answers when deciding failed. Default: 503 problem+json for a store error, else the error. */
  onError?: (error: unknown, request: FastifyRequest, reply: FastifyReply) => unknown;
}

/** Options Fastify's `register` itself understands; not ours to refuse. */
const REGISTER_OPTIONS = ["prefix", "logLevel", "logSerializers"];

const kCharge = Symbol("sluice.charge");
type WithCharge = FastifyRequest & { [kCharge]?: Charge };

/**
 * The names `rateLimitHeaders` writes, in the lower case Fastify stores them in: `reply.header`
 * lower-cases every name, and a name it had to lower-case is a new string each time, looked up
 * in V8's string table before it can be a property key.
 */
const LOWER_CASE: Readonly<Record<string, string>> = {
  "RateLimit-Policy": "ratelimit-policy",
  RateLimit: "ratelimit",
  "RateLimit-Limit": "ratelimit-limit",
  "RateLimit-Remaining": "ratelimit-remaining",
  "RateLimit-Reset": "ratelimit-reset",
  "X-RateLimit-Limit": "x-ratelimit-limit",
  "X-RateLimit-Remaining": "x-ratelimit-remaining",
  "X-RateLimit-Reset": "x-ratelimit-reset",
  "Retry-After": "retry-after",
};

function setHeaders(reply: FastifyReply, headers: Readonly<Record<string, string>>): void {
  for (const name in headers) reply.header(LOWER_CASE[name] ?? name, headers[name]);
}

const transport: Transport<FastifyRequest> = {
  address: (request) => request.ip,
  disconnectSignal: (request) => disconnectSignal(request.raw),
};

// The response was sent: refund by the status Fastify sent (and release slots, if node's "close"
// has not already).
const onResponse: onResponseHookHandler = (request, reply, done) => {
  (request as WithCharge)[kCharge]?.finish(reply.statusCode);
  done();
};

/** The symbol Fastify keeps a request's route context under, or null when there is none. */
function findContextKey(request: FastifyRequest): symbol | null {
  const config = request.routeOptions.config;
  for (const key of Object.getOwnPropertySymbols(request)) {
    if (key.description !== "fastify.context") continue;
    const context = (request as unknown as Record<symbol, unknown>)[key];
    if (typeof context === "object" && context !== null && "config" in context) {
      return context.config === config ? key : null;
    }
  }
  return null;
}

async function sluiceRateLimit(app: FastifyInstance, options: FastifyRateLimitOptions) {
  const settings = checkOptions<FastifyRequest>(options, REGISTER_OPTIONS);
  const flow = new RateLimitFlow(settings, transport);
  const onLimited = options.onLimited;
  const onError = options.onError;
  if (!app.hasRequestDecorator("rateLimit")) app.decorateRequest("rateLimit", undefined);

  /**
   * Applies an outcome: true when the request goes on to its handler, false when it was answered
   * here, a promise when a user callback answers (a refusal or an error is never passed on).
   */
  const apply = (
    outcome: Outcome,
    request: FastifyRequest,
    reply: FastifyReply,
  ): boolean | Promise<unknown> => {
    switch (outcome.kind) {
      case "skip":
        return true;
      case "admit":
        if (outcome.headers !== undefined) setHeaders(reply, outcome.headers);
        request.rateLimit = outcome.decision;
        if (outcome.charge !== undefined) {
          (request as WithCharge)[kCharge] = outcome.charge;
          // Node's "close" settles it when the response is over or the client left, whichever
          // comes first, including a client that leaves while the response is being written.
          settleWhenDone(request.raw, reply.raw, outcome.charge);
        }
        return true;
      case "limit":
        setHeaders(reply, outcome.headers);
        if (onLimited !== undefined) {
          const info = { decision: outcome.decision, headers: outcome.headers };
          return Promise.resolve(onLimited(request, reply, info));
        }
        reply.code(429).type(PROBLEM_TYPE).send(limitedProblem(outcome.decision));
        return false;
      case "fail":
        if (onError !== undefined) return Promise.resolve(onError(outcome.error, request, reply));
        if (!isStoreError(outcome.error)) throw outcome.error;
        reply
          .code(503)
          .header("Retry-After", String(OUTAGE_RETRY_AFTER_S))
          .type(PROBLEM_TYPE)
          .send(outageProblem());
        return false;
      case "gone":
        reply.hijack();
        return false;
    }
  };

  // Callback style: Fastify then runs no promise of its own around the hook.
  const onRequest = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: (error?: Error) => void,
  ): void => {
    flow.decideThen(request, (outcome) => {
      let next: boolean | Promise<unknown>;
      try {
        next = apply(outcome, request, reply);
      } catch (error) {
        done(error as Error);
        return;
      }
      // A hook that answered early must not call done(): Fastify would go on to the handler.
      if (next === true) done();
      else if (next !== false) next.catch(done);
    });
  };
  // The route's config, for its opt-out. `request.routeOptions` builds an object of twelve fields
  // on every read; Fastify keeps the route's context, whose `config` it reads, under a symbol of
  // its own. That symbol is looked for on the first request and used once it is seen to hold the
  // same config; a Fastify without it keeps the getter.
  let contextKey: symbol | null | undefined;
  const routeConfig = (request: FastifyRequest): { rateLimit?: false } | undefined => {
    if (contextKey === undefined) contextKey = findContextKey(request);
    if (contextKey === null) return request.routeOptions.config;
    return (request as unknown as Record<symbol, { config?: { rateLimit?: false } }>)[contextKey]
      ?.config;
  };
  // App-wide, so it also covers routes declared before this plugin finished loading (an
  // un-awaited register), which an onRoute hook would never see.
  app.addHook("onRequest", (request, reply, done) => {
    if (routeConfig(request)?.rateLimit === false) done();
    else onRequest(request, reply, done);
  });
  // Only with refund: every hook Fastify runs costs each request, and leases need none (above).
  if (settings.refund !== undefined) app.addHook("onResponse", onResponse);
}

// Like fastify-plugin: skip Fastify's encapsulation so the hooks apply to the whole app (or the
// context it is registered in), and give the plugin a name in Fastify's logs and errors.
Object.assign(sluiceRateLimit, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "@sluice/http",
  [Symbol.for("plugin-meta")]: { name: "@sluice/http", fastify: "5.x" },
});

/** Fastify plugin: `await app.register(rateLimit, { limiter })`. */
export const rateLimit: FastifyPluginAsync<FastifyRateLimitOptions> = sluiceRateLimit;
export default rateLimit;
