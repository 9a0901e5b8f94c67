import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { type Attributes, type MeterProvider, metrics } from "@opentelemetry/api";
import {
  diagnosticsChannels,
  type Limiter,
  type LimiterEventName,
  type LimiterEvents,
} from "@sluice/core";
import { attributeNames as A, metricNames } from "./names.js";
import { checkOptions, hasMethod, isAttributes } from "./options.js";

/** Options of {@link instrumentSluice}. */
export interface SluiceMetricsOptions {
  /** Where the instruments are created; default: the global provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /**
   * Listen to this limiter's events (`limiter.on`) only. Default: every limiter of the process,
   * through the `node:diagnostics_channel` channels named in `diagnosticsChannels`.
   */
  limiter?: Limiter;
  /** Added to every data point, e.g. `{ "sluice.limiter": "api" }` to tell limiters apart. */
  attributes?: Attributes;
}

/** A running instrumentation: {@link instrumentSluice}'s result. */
export interface SluiceMetrics {
  /** Unsubscribes from the events and removes the gauges' callbacks. Idempotent. */
  stop(): void;
  /** Same as `stop()`, for `using metrics = instrumentSluice()`. */
  [Symbol.dispose](): void;
}

/** Entries kept in an attribute cache before it starts over (policy names may be dynamic). */
const ATTRIBUTE_CACHE_LIMIT = 1024;

/**
 * Records sluice's limiter events as OpenTelemetry metrics: decisions by outcome, decisions by
 * policy and outcome, store errors by code, open breakers and active fallbacks by store, and
 * ignored reconcile observations (names in {@link metricNames}). Store latency needs the store
 * itself: wrap it with {@link instrumentStore}.
 *
 * Listens to every limiter in the process unless `limiter` is given; start it once (two
 * instrumentations hearing the same limiter count its decisions twice).
 *
 * @param options - where to record, which limiter, extra attributes.
 * @returns a handle whose `stop()` ends the recording.
 * @throws ConfigError for an unknown option name or a value of the wrong type.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api";
 * import { instrumentSluice } from "@sluice/otel";
 *
 * const sluiceMetrics = instrumentSluice({ meterProvider: metrics.getMeterProvider() });
 * // ... later, on shutdown
 * sluiceMetrics.stop();
 * ```
 */
export function instrumentSluice(options?: SluiceMetricsOptions): SluiceMetrics {
  checkOptions(options, {
    meterProvider: hasMethod("getMeter", "a MeterProvider"),
    limiter: hasMethod("on", "a Limiter"),
    attributes: isAttributes,
  });
  const base: Attributes = { ...options?.attributes };
  const meter = (options?.meterProvider ?? metrics.getMeterProvider()).getMeter("@sluice/otel");

  const decisions = meter.createCounter(metricNames.decisions, {
    unit: "{decision}",
    description: "Decisions returned by take, peek and tryAcquire (also inside wait and acquire)",
  });
  const policyDecisions = meter.createCounter(metricNames.policyDecisions, {
    unit: "{decision}",
    description: "Decisions by policy: refused when the policy is among those that refused",
  });
  const storeErrors = meter.createCounter(metricNames.storeErrors, {
    unit: "{error}",
    description: "Store calls that failed or timed out, by error code and onStoreError handling",
  });
  const observationsIgnored = meter.createCounter(metricNames.observationsIgnored, {
    unit: "{observation}",
    description: "Reconcile observations not applied (unknown policy)",
  });
  const breakersOpen = meter.createObservableGauge(metricNames.breakersOpen, {
    unit: "{breaker}",
    description: "Limiters whose breaker is open on the store (decisions answered without it)",
  });
  const fallbacksActive = meter.createObservableGauge(metricNames.fallbacksActive, {
    unit: "{limiter}",
    description: "Limiters deciding on their fallback store",
  });

  // Attribute objects are reused: most processes see a handful of combinations.
  const cache = new Map<string, Attributes>();
  const attrs = (id: string, make: () => Attributes): Attributes => {
    let a = cache.get(id);
    if (a === undefined) {
      if (cache.size >= ATTRIBUTE_CACHE_LIMIT) cache.clear();
      a = { ...base, ...make() };
      cache.set(id, a);
    }
    return a;
  };

  // Per store name, because channel payloads do not say which limiter they came from; a count
  // (not a flag) so two limiters on one store add up, never below 0 for an outage begun before
  // the instrumentation started.
  const open = new Map<string, number>();
  const fallbacks = new Map<string, number>();
  const step = (counts: Map<string, number>, store: string, by: 1 | -1) =>
    counts.set(store, Math.max(0, (counts.get(store) ?? 0) + by));

  const handlers: { [E in LimiterEventName]: (payload: LimiterEvents[E]) => void } = {
    decision({ op, decision }) {
      const outcome = decision.allowed ? "allowed" : "refused";
      const degraded = decision.degraded === true;
      decisions.add(
        1,
        attrs(`d|${op}|${outcome}|${degraded}`, () => ({
          [A.operation]: op,
          [A.outcome]: outcome,
          [A.degraded]: degraded,
        })),
      );
      for (const state of decision.policies) {
        const own = decision.blockedBy.includes(state.name) ? "refused" : "allowed";
        policyDecisions.add(
          1,
          attrs(`p|${op}|${own}|${state.kind}|${state.name}`, () => ({
            [A.operation]: op,
            [A.outcome]: own,
            [A.policyName]: state.name,
            [A.policyKind]: state.kind,
          })),
        );
      }
    },
    storeError({ op, error, store, handling }) {
      storeErrors.add(
        1,
        attrs(`e|${op}|${store}|${error.code}|${handling}`, () => ({
          [A.operation]: op,
          [A.store]: store,
          [A.errorType]: error.code,
          [A.handling]: handling,
        })),
      );
    },
    observationIgnored() {
      observationsIgnored.add(1, base);
    },
    fallback({ active, store }) {
      step(fallbacks, store, active ? 1 : -1);
    },
    storeDown({ store }) {
      step(open, store, 1);
    },
    storeUp({ store }) {
      step(open, store, -1);
    },
  };

  const observe =
    (counts: Map<string, number>) =>
    (result: { observe(value: number, attributes?: Attributes): void }) => {
      for (const [store, n] of counts) result.observe(n, { ...base, [A.store]: store });
    };
  const observeOpen = observe(open);
  const observeFallbacks = observe(fallbacks);
  breakersOpen.addCallback(observeOpen);
  fallbacksActive.addCallback(observeFallbacks);

  const events = Object.keys(handlers) as LimiterEventName[];
  const stops: (() => void)[] = [];
  const limiter = options?.limiter;
  for (const event of events) {
    const handler = handlers[event] as (payload: unknown) => void;
    if (limiter !== undefined) {
      stops.push(limiter.on(event, handler));
    } else {
      const name = diagnosticsChannels[event];
      subscribe(name, handler);
      stops.push(() => unsubscribe(name, handler));
    }
  }

  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    for (const s of stops) s();
    breakersOpen.removeCallback(observeOpen);
    fallbacksActive.removeCallback(observeFallbacks);
  };
  return { stop, [Symbol.dispose]: stop };
}
