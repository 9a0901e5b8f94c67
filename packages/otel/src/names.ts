/**
 * The names of the instruments `@sluice/otel` creates, for views, dashboards and alerts.
 * Durations are in seconds, as OpenTelemetry's semantic conventions ask.
 */
export const metricNames = {
  /** Counter: one per decision, by `sluice.operation`, `sluice.outcome`, `sluice.degraded`. */
  decisions: "sluice.decisions",
  /**
   * Counter: one per policy a decision reports, by `sluice.policy.name`, `sluice.policy.kind`,
   * `sluice.operation` and `sluice.outcome` (`refused` when that policy is among the blockers).
   */
  policyDecisions: "sluice.policy.decisions",
  /** Counter: store calls that failed or timed out, by `sluice.store`, `error.type`, `sluice.handling`. */
  storeErrors: "sluice.store.errors",
  /** Gauge: limiters whose breaker is open on that store (`sluice.store`); 0 once it is back. */
  breakersOpen: "sluice.store.breakers_open",
  /** Gauge: limiters deciding on their fallback store, by `sluice.store` (the fallback's name). */
  fallbacksActive: "sluice.store.fallbacks_active",
  /** Counter: reconcile observations not applied (unknown policy). */
  observationsIgnored: "sluice.observations.ignored",
  /** Histogram (s): one store call, by `sluice.store`, `sluice.operation`, and `error.type` on failure. */
  storeDuration: "sluice.store.duration",
} as const;

/** Attribute keys on sluice's data points and spans. */
export const attributeNames = {
  operation: "sluice.operation",
  outcome: "sluice.outcome",
  degraded: "sluice.degraded",
  policyName: "sluice.policy.name",
  policyKind: "sluice.policy.kind",
  store: "sluice.store",
  handling: "sluice.handling",
  errorType: "error.type",
} as const;
