import {
  type Attributes,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { ConfigError, type Store } from "@sluice/core";
import { attributeNames as A, metricNames } from "./names.js";
import { checkOptions, hasMethod, isAttributes, isBoolean } from "./options.js";

/** Options of {@link instrumentStore}. */
export interface InstrumentStoreOptions {
  /** Where the duration histogram is created; default: the global provider. */
  meterProvider?: MeterProvider;
  /**
   * A span per store call (`sluice.store <op>`, kind client), child of the active span. Default:
   * true when `tracerProvider` is given, else false.
   */
  spans?: boolean;
  /** Where spans are created; default: the global provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Added to every data point and span. */
  attributes?: Attributes;
}

/**
 * Bucket bounds in seconds: an in-process decision takes microseconds, a remote one a
 * millisecond or two, and the default `timeoutMs` is one second.
 */
const DURATION_BUCKETS_S = [
  0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5,
];

type Request = Parameters<Store["execute"]>[0];
type Result = ReturnType<Store["execute"]>;

const errorType = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "unknown";
};

/**
 * Wraps a store so that each call is timed into the `sluice.store.duration` histogram (seconds,
 * by `sluice.store`, `sluice.operation` and, on failure, `error.type`) and, when asked, traced
 * as a client span. Hand the wrapper to `createLimiter` in place of the store; decisions are the
 * same. Keep the original for methods a store has beyond the contract.
 *
 * The engine gives up on a remote call after `timeoutMs`; the histogram records the call's
 * whole duration, however long, which is what shows a slow store.
 *
 * @param store - the store to measure.
 * @param options - where to record, whether to trace, extra attributes.
 * @returns a Store with the same capabilities and answers.
 * @throws ConfigError for an unknown option name or a value of the wrong type.
 *
 * @example
 * ```ts
 * import { createLimiter } from "@sluice/core";
 * import { instrumentStore } from "@sluice/otel";
 * import { redisStore } from "@sluice/store-redis";
 *
 * const limiter = createLimiter({
 *   store: instrumentStore(redisStore({ client }), { spans: true }),
 *   policies: [{ kind: "tokenBucket", name: "api", capacity: 10, refill: { tokens: 10, every: "1s" } }],
 * });
 * ```
 */
export function instrumentStore(store: Store, options?: InstrumentStoreOptions): Store {
  checkOptions(options, {
    meterProvider: hasMethod("getMeter", "a MeterProvider"),
    spans: isBoolean,
    tracerProvider: hasMethod("getTracer", "a TracerProvider"),
    attributes: isAttributes,
  });
  if (typeof store !== "object" || store === null || typeof store.execute !== "function") {
    throw new ConfigError([
      { path: "store", message: "must be a Store (an object with execute())" },
    ]);
  }
  const name = store.capabilities.name;
  const base: Attributes = { ...options?.attributes, [A.store]: name };
  const meter = (options?.meterProvider ?? metrics.getMeterProvider()).getMeter("@sluice/otel");
  const duration = meter.createHistogram(metricNames.storeDuration, {
    unit: "s",
    description: "Duration of one store call (a whole decision: one round trip)",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
  });
  const spans = options?.spans ?? options?.tracerProvider !== undefined;
  const tracer = spans
    ? (options?.tracerProvider ?? trace.getTracerProvider()).getTracer("@sluice/otel")
    : undefined;

  const okAttributes = new Map<string, Attributes>();
  const finish = (op: string, startMs: number, span: Span | undefined, error: unknown) => {
    const seconds = (performance.now() - startMs) / 1000;
    if (error === undefined) {
      let a = okAttributes.get(op);
      if (a === undefined) {
        a = { ...base, [A.operation]: op };
        okAttributes.set(op, a);
      }
      duration.record(seconds, a);
    } else {
      duration.record(seconds, { ...base, [A.operation]: op, [A.errorType]: errorType(error) });
    }
    if (span !== undefined) {
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorType(error) });
        span.setAttribute(A.errorType, errorType(error));
      }
      span.end();
    }
  };

  const wrapped: {
    -readonly [K in keyof Store]: Store[K];
  } = {
    capabilities: store.capabilities,
    execute(request: Request): Result {
      const op = request.op;
      const span = tracer?.startSpan(`sluice.store ${op}`, {
        kind: SpanKind.CLIENT,
        attributes: { ...base, [A.operation]: op },
      });
      const startMs = performance.now();
      let out: Result;
      try {
        out = store.execute(request);
      } catch (error) {
        finish(op, startMs, span, error);
        throw error;
      }
      if (!(out instanceof Promise)) {
        finish(op, startMs, span, undefined);
        return out;
      }
      return out.then(
        (answer) => {
          finish(op, startMs, span, undefined);
          return answer;
        },
        (error: unknown) => {
          finish(op, startMs, span, error ?? new Error("rejected without a reason"));
          throw error;
        },
      );
    },
  };
  const decideNow = store.decideNow;
  if (decideNow !== undefined) {
    // In-process answers: timed, never traced (a span would cost more than the decision).
    wrapped.decideNow = (request, handles) => {
      const op = request.op;
      const startMs = performance.now();
      try {
        const answer = decideNow.call(store, request, handles);
        finish(op, startMs, undefined, undefined);
        return answer;
      } catch (error) {
        finish(op, startMs, undefined, error);
        throw error;
      }
    };
  }
  if (store.migrate !== undefined) wrapped.migrate = () => store.migrate!();
  if (store.close !== undefined) wrapped.close = () => store.close!();
  return wrapped;
}
