import { ConfigError, type ConfigIssue } from "./errors.js";

// Every factory and method of every sluice package checks its options object here, so that a
// misspelt option is refused with the same wording everywhere instead of being ignored.

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The known name closest to `word`, when it is close enough to be a likely typo (case ignored). */
export function closestName(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const lower = word.toLowerCase();
  for (const c of known) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** `unknown option (did you mean "x"?)`, or without the hint when nothing is close. */
export function unknownOptionMessage(name: string, known: Iterable<string>): string {
  const hint = closestName(name, known);
  return `unknown option${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`;
}

/**
 * Pushes one issue per option name of `options` that `known` lacks, with a "did you mean" hint;
 * `path` is the option object's own path (`""` at the top level, `"breaker"` for a nested one).
 */
export function unknownOptionIssues(
  options: object,
  known: readonly string[],
  issues: ConfigIssue[],
  path = "",
): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    issues.push({
      path: path === "" ? name : `${path}.${name}`,
      message: unknownOptionMessage(name, known),
    });
  }
}

/** Throws a ConfigError naming every option of `options` that `known` lacks. */
export function checkOptionNames(options: object, known: readonly string[], path = ""): void {
  const issues: ConfigIssue[] = [];
  unknownOptionIssues(options, known, issues, path);
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * The options object of `what` (e.g. `"memoryStore"`): `undefined` reads as `{}` when
 * `optional`; anything else that is not a plain object is a ConfigError.
 */
export function optionsObject(
  value: unknown,
  what: string,
  optional: boolean,
): Record<string, unknown> {
  if (value === undefined && optional) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError([
      { path: "", message: `${what} needs an options object (got ${describeValue(value)})` },
    ]);
  }
  return value as Record<string, unknown>;
}

/** A short, safe description of a value for a message. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
