import { ConfigError, type ConfigIssue } from "@sluice/core";

/**
 * Refuses option names the factory does not know, with a "did you mean" hint, and values of the
 * wrong type: a misspelt `meterProvder` would otherwise record into the global no-op provider
 * without a word.
 */
export function checkOptions(
  options: unknown,
  fields: Readonly<Record<string, (value: unknown) => string | undefined>>,
): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError([{ path: "", message: "options must be an object" }]);
  }
  const issues: ConfigIssue[] = [];
  const known = Object.keys(fields);
  for (const [name, value] of Object.entries(options)) {
    const check = fields[name];
    if (check === undefined) {
      const hint = closest(name, known);
      issues.push({
        path: name,
        message: `unknown option${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`,
      });
    } else if (value !== undefined) {
      const problem = check(value);
      if (problem !== undefined) issues.push({ path: name, message: problem });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/** An object with the named methods (a provider from any copy of `@opentelemetry/api`). */
export const hasMethod =
  (method: string, what: string) =>
  (value: unknown): string | undefined =>
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>)[method] === "function"
      ? undefined
      : `must be ${what} (an object with ${method}())`;

export const isBoolean = (value: unknown): string | undefined =>
  typeof value === "boolean" ? undefined : "must be true or false";

export const isAttributes = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "must be an object of attribute values";
  }
  for (const [k, v] of Object.entries(value)) {
    if (!["string", "number", "boolean"].includes(typeof v)) {
      return `"${k}" must be a string, number or boolean`;
    }
  }
  return undefined;
};

function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}
