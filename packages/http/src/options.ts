import {
  ConfigError,
  type ConfigIssue,
  type Decision,
  type Key,
  type Limiter,
  type RateLimitStandard,
} from "@sluice/core";
import {
  checkMs,
  describeValue,
  unknownOptionIssues,
  unknownOptionMessage,
} from "@sluice/core/store";

/** What the middleware asks of a limiter (structural, so any build of @sluice/core fits). */
export type LimiterLike = Pick<
  Limiter,
  "take" | "peek" | "wait" | "tryAcquire" | "acquire" | "refund"
> & { readonly policies?: readonly { readonly kind: string }[] };

/** What `onLimited` is told besides the framework's own arguments. */
export interface LimitedInfo {
  /** The refusing decision. */
  readonly decision: Decision;
  /** The headers already set on the response (rate-limit headers and `Retry-After`). */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Options shared by every framework. `R` is what the framework hands the option functions (the
 * Express/Fastify/node request, the Hono context).
 */
export interface RateLimitOptionsBase<R> {
  /** A limiter, or a function choosing one per request (e.g. `registry.limiter(tenant)`). */
  limiter: LimiterLike | ((req: R) => LimiterLike | Promise<LimiterLike>);
  /** The key to limit by; undefined falls back to the default, the client IP (IPv6 by /56). */
  key?: (req: R) => Key | undefined | Promise<Key | undefined>;
  /** Cost of a request (default 1). */
  cost?: number | ((req: R) => number | Promise<number>);
  /** True lets a request through unlimited and without headers. */
  skip?: (req: R) => boolean | Promise<boolean>;
  /** Which rate-limit header standard to write (default "draft-8"); false for none. */
  headers?: RateLimitStandard;
  /** Also write `X-RateLimit-Limit/Remaining/Reset` (default false). */
  legacyHeaders?: boolean;
  /** Given the response status once it is sent: true gives the request's charge back. */
  refund?: (statusCode: number) => boolean;
  /** Queue a request until it is admitted, for at most `maxWaitMs`, instead of refusing it. */
  wait?: false | { maxWaitMs: number };
}

/** Checked options in the shape the decision flow reads. */
export interface Settings<R> {
  readonly limiter: LimiterLike | undefined;
  readonly pickLimiter: ((req: R) => LimiterLike | Promise<LimiterLike>) | undefined;
  readonly key: ((req: R) => Key | undefined | Promise<Key | undefined>) | undefined;
  readonly cost: number;
  readonly costOf: ((req: R) => number | Promise<number>) | undefined;
  readonly skip: ((req: R) => boolean | Promise<boolean>) | undefined;
  /** Passed to `rateLimitHeaders` as is: one object, so core checks it once. */
  readonly headerOptions: { readonly standard: RateLimitStandard; readonly legacy: boolean };
  /** False when neither standard nor legacy headers are written. */
  readonly writeHeaders: boolean;
  readonly refund: ((statusCode: number) => boolean) | undefined;
  readonly maxWaitMs: number | undefined;
  readonly onLimited: ((...args: never[]) => unknown) | undefined;
  readonly onError: ((...args: never[]) => unknown) | undefined;
}

const OPTION_NAMES = [
  "limiter",
  "key",
  "cost",
  "skip",
  "headers",
  "legacyHeaders",
  "refund",
  "wait",
  "onLimited",
  "onError",
] as const;

const STANDARDS: readonly unknown[] = ["draft-8", "draft-7", "draft-6", false];

function isLimiter(value: unknown): value is LimiterLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as LimiterLike).take === "function" &&
    typeof (value as LimiterLike).tryAcquire === "function"
  );
}

function optionalFunction(issues: ConfigIssue[], o: Record<string, unknown>, name: string): void {
  if (o[name] !== undefined && typeof o[name] !== "function") {
    issues.push({ path: name, message: `${name} must be a function` });
  }
}

/**
 * Checks middleware options: an unknown name or a bad value is a ConfigError naming the field.
 * `ignored` lists names the framework itself passes along (Fastify's register options).
 */
export function checkOptions<R>(input: unknown, ignored: readonly string[] = []): Settings<R> {
  if (typeof input !== "object" || input === null) {
    throw new ConfigError([{ path: "", message: "rateLimit needs an options object" }]);
  }
  const o = input as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(o)) {
    if ((OPTION_NAMES as readonly string[]).includes(name) || ignored.includes(name)) continue;
    issues.push({ path: name, message: unknownOptionMessage(name, OPTION_NAMES) });
  }
  const limiter = o.limiter;
  if (typeof limiter !== "function" && !isLimiter(limiter)) {
    issues.push({
      path: "limiter",
      message:
        limiter === undefined
          ? "limiter is required (a Limiter, or a function returning one per request)"
          : "limiter must be a Limiter (createLimiter(...)) or a function returning one",
    });
  }
  optionalFunction(issues, o, "key");
  optionalFunction(issues, o, "skip");
  optionalFunction(issues, o, "refund");
  optionalFunction(issues, o, "onLimited");
  optionalFunction(issues, o, "onError");
  const cost = o.cost;
  if (
    cost !== undefined &&
    typeof cost !== "function" &&
    !(typeof cost === "number" && Number.isSafeInteger(cost) && cost >= 0)
  ) {
    issues.push({
      path: "cost",
      message: `cost must be a non-negative integer or a function (got ${describeValue(cost)})`,
    });
  }
  if (o.headers !== undefined && !STANDARDS.includes(o.headers)) {
    issues.push({
      path: "headers",
      message: `headers must be "draft-8", "draft-7", "draft-6" or false (got ${describeValue(o.headers)})`,
    });
  }
  if (o.legacyHeaders !== undefined && typeof o.legacyHeaders !== "boolean") {
    issues.push({ path: "legacyHeaders", message: "legacyHeaders must be a boolean" });
  }
  let maxWaitMs: number | undefined;
  const wait = o.wait;
  if (wait !== undefined && wait !== false) {
    if (typeof wait !== "object" || wait === null) {
      issues.push({ path: "wait", message: "wait must be false or { maxWaitMs }" });
    } else {
      unknownOptionIssues(wait, ["maxWaitMs"], issues, "wait");
      const ms = (wait as { maxWaitMs?: unknown }).maxWaitMs;
      const bad =
        ms === undefined
          ? "wait.maxWaitMs is required (the longest a request may queue, in ms)"
          : checkMs(ms, "maxWaitMs", { fraction: true });
      if (bad !== undefined) issues.push({ path: "wait.maxWaitMs", message: bad });
      else maxWaitMs = ms as number;
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const standard = (o.headers ?? "draft-8") as RateLimitStandard;
  const legacy = o.legacyHeaders === true;
  return {
    limiter: typeof limiter === "function" ? undefined : (limiter as LimiterLike),
    pickLimiter:
      typeof limiter === "function"
        ? (limiter as (req: R) => LimiterLike | Promise<LimiterLike>)
        : undefined,
    key: o.key as Settings<R>["key"],
    cost: typeof cost === "number" ? cost : 1,
    costOf: typeof cost === "function" ? (cost as Settings<R>["costOf"]) : undefined,
    skip: o.skip as Settings<R>["skip"],
    headerOptions: Object.freeze({ standard, legacy }),
    writeHeaders: standard !== false || legacy,
    refund: o.refund as Settings<R>["refund"],
    maxWaitMs,
    onLimited: o.onLimited as Settings<R>["onLimited"],
    onError: o.onError as Settings<R>["onError"],
  };
}
