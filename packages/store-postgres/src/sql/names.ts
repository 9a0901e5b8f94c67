import { createHash } from "node:crypto";
import { ConfigError, type ConfigIssue } from "@sluice/core";
import { describeValue } from "@sluice/core/store";

/**
 * Quoted, validated names of every database object the store owns. Identifiers cannot be bound as
 * parameters, so they are checked against a plain-identifier pattern and double-quoted; nothing
 * else from the user is ever spliced into SQL.
 */
export interface SqlNames {
  readonly schema: string;
  readonly table: string;
  /** `"schema"."table"` */
  readonly qualifiedTable: string;
  /** `"schema"."table_execute"`: the decision function. */
  readonly executeFn: string;
  /** Its unquoted name, as pg_proc spells it. */
  readonly executeFnName: string;
  /** `"schema"."table_now"`: the store's clock (see `nowFunctionSql`). */
  readonly nowFn: string;
  /** Unquoted index name (CREATE INDEX takes it unqualified). */
  readonly dueIndex: string;
  /** Prepared-statement name prefix, unique per schema and table. */
  readonly statementPrefix: string;
}

// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); the table name also carries the
// longest suffix we append ("_execute", "_due_idx"), so it must leave room for it.
const MAX_IDENTIFIER = 63;
const LONGEST_SUFFIX = "_execute".length;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkIdentifier(
  value: unknown,
  field: string,
  maxLength: number,
  issues: ConfigIssue[],
): string | undefined {
  if (typeof value !== "string" || !IDENTIFIER.test(value) || value.length > maxLength) {
    issues.push({
      path: field,
      message: `${field} must be a plain identifier (letters, digits, underscores, not starting with a digit, at most ${maxLength} characters); got ${describeValue(value)}`,
    });
    return undefined;
  }
  return value;
}

const quote = (id: string) => `"${id}"`;

/**
 * The names for a schema and table; a bad identifier is pushed to `issues` (undefined returned),
 * or, without `issues`, thrown as a ConfigError.
 */
export function sqlNames(schema: unknown, table: unknown): SqlNames;
export function sqlNames(
  schema: unknown,
  table: unknown,
  issues: ConfigIssue[],
): SqlNames | undefined;
export function sqlNames(
  schema: unknown,
  table: unknown,
  issues?: ConfigIssue[],
): SqlNames | undefined {
  const found: ConfigIssue[] = issues ?? [];
  const s = checkIdentifier(schema, "schema", MAX_IDENTIFIER, found);
  const t = checkIdentifier(table, "table", MAX_IDENTIFIER - LONGEST_SUFFIX, found);
  if (s === undefined || t === undefined) {
    if (issues === undefined) throw new ConfigError(found);
    return undefined;
  }
  return {
    schema: quote(s),
    table: quote(t),
    qualifiedTable: `${quote(s)}.${quote(t)}`,
    executeFn: `${quote(s)}.${quote(`${t}_execute`)}`,
    executeFnName: `${t}_execute`,
    nowFn: `${quote(s)}.${quote(`${t}_now`)}`,
    dueIndex: quote(`${t}_due_idx`),
    statementPrefix: statementPrefix(s, t),
  };
}

// The longest statement name suffix the store appends (":execute", ":sweep").
const LONGEST_STATEMENT_SUFFIX = ":execute".length;

/**
 * `sluice:<schema>.<table>` when that leaves room for every suffix within 63 bytes; otherwise
 * a readable head and a hash of the whole. PostgreSQL truncates a longer name, so two long
 * table names sharing a head would share one prepared statement per connection (and fail).
 */
function statementPrefix(schema: string, table: string): string {
  const full = `sluice:${schema}.${table}`;
  if (full.length + LONGEST_STATEMENT_SUFFIX <= MAX_IDENTIFIER) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 16);
  return `${full.slice(0, MAX_IDENTIFIER - LONGEST_STATEMENT_SUFFIX - hash.length - 1)}~${hash}`;
}
