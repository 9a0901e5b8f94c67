import { SluiceError } from "@sluice/core";

/**
 * A daily window (the product `quota` or `tenantDay`, or `daily` for the 2500/day vendor) is
 * exhausted and resets later than the caller is willing to wait: the request was not sent.
 * Retryable: it succeeds after `resetAtMs`.
 */
export class KeapQuotaExhaustedError extends SluiceError {
  /** When the exhausted window resets (epoch ms). */
  readonly resetAtMs: number;
  /** Name of the exhausted policy, e.g. "quota" or "tenantDay". */
  readonly policy: string;

  constructor(policy: string, resetAtMs: number, options: { cause?: unknown } = {}) {
    const at = Number.isFinite(resetAtMs) ? new Date(resetAtMs).toISOString() : String(resetAtMs);
    super("QUOTA_EXHAUSTED", `Keap ${policy} is exhausted until ${at}`, {
      ...options,
      retryable: true,
    });
    this.name = "KeapQuotaExhaustedError";
    this.policy = policy;
    this.resetAtMs = resetAtMs;
  }
}
