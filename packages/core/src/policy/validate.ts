import { describeValue } from "../options-check.js";

/**
 * One problem found in a configuration value; `toConfigIssues` turns it into a `ConfigIssue`.
 * The shape follows zod's issues, which this format was first checked with.
 */
export interface SchemaIssue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  /** The offending value, for type mismatches (a missing field then reads "<field> is required"). */
  readonly input?: unknown;
  /** Unknown field names, for `unrecognized_keys`. */
  readonly keys?: readonly string[];
  /** True when later checks of the same object still run (a refinement needs sound types). */
  readonly continue?: boolean;
}

export type SafeParseResult<T> =
  | { readonly success: true; readonly data: T }
  | { readonly success: false; readonly error: { readonly issues: SchemaIssue[] } };

export interface Validator<T> {
  safeParse(input: unknown): SafeParseResult<T>;
}

/** Wraps a check into `safeParse`; a valid value is returned as given (checks never transform). */
export function validator<T>(
  check: (v: unknown, at: readonly PropertyKey[], issues: SchemaIssue[]) => void,
): Validator<T> {
  return {
    safeParse(input) {
      const issues: SchemaIssue[] = [];
      check(input, [], issues);
      return issues.length === 0
        ? { success: true, data: input as T }
        : { success: false, error: { issues } };
    },
  };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Whether an issue pushed since `start` stops an object's refinements (a wrong type does). */
export function wasAborted(issues: readonly SchemaIssue[], start: number): boolean {
  for (let i = start; i < issues.length; i++) if (issues[i]!.continue !== true) return true;
  return false;
}

/** Pushes one `unrecognized_keys` issue naming every field of `v` that `known` lacks. */
export function objectIssue(
  v: Record<string, unknown>,
  known: readonly string[],
  path: readonly PropertyKey[],
  issues: SchemaIssue[],
): void {
  let unknown: string[] | undefined;
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) (unknown ??= []).push(key);
  }
  if (unknown === undefined) return;
  const list = unknown.map((k) => `"${k}"`).join(", ");
  issues.push({
    code: "unrecognized_keys",
    path,
    message: `Unrecognized key${unknown.length > 1 ? "s" : ""}: ${list}`,
    keys: unknown,
    continue: true,
  });
}

/** The message for a value of the wrong type where the format has no message of its own. */
export function expected(type: "object" | "string", v: unknown): string {
  return `must be ${type === "object" ? "an object" : "a string"} (got ${describeValue(v)})`;
}

/** Length limits apply to anything with a length, even after a wrong type (as zod checks them). */
export function lengthOf(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = (v as { length?: unknown }).length;
  return typeof n === "number" ? n : undefined;
}
