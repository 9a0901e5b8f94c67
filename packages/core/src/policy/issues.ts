import type { ConfigIssue } from "../errors.js";
import { closestName } from "../options-check.js";
import type { SchemaIssue } from "./validate.js";

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `["tenants", "acme", "policies", 0, "limit"]` -> `tenants.acme.policies[0].limit`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const s = String(seg);
      if (IDENT.test(s)) out += out === "" ? s : `.${s}`;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

/**
 * Turns schema issues into path + message pairs. `knownKeys` gives, for an object at a path, the
 * fields it accepts, so unknown fields get a "did you mean" hint.
 */
export function toConfigIssues(
  issues: readonly SchemaIssue[],
  prefix: readonly PropertyKey[],
  knownKeys?: (path: readonly PropertyKey[], input: unknown) => readonly string[] | undefined,
  root?: unknown,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys ?? []) {
        const known = knownKeys?.(issue.path, valueAt(root, issue.path));
        const hint = known ? closestName(key, known) : undefined;
        out.push({
          path: formatPath([...path, key]),
          message: `unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}`,
        });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type" && issue.input === undefined) {
      const field = path.length > 0 ? String(path[path.length - 1]) : "value";
      message = `${field} is required`;
    }
    out.push({ path: formatPath(path), message });
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}
