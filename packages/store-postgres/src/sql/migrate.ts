import { EXECUTE_ARGUMENT_TYPES, executeFunctionSql, nowFunctionSql } from "./execute.js";
import type { SqlNames } from "./names.js";

/**
 * The state table: one row per state key (one per policy and key). Columns are kind-agnostic so
 * a single table and a single function serve every policy kind; which column holds which state
 * field follows from core's kinds table (layout.ts, documented in docs/stores/postgres.md). It has
 * not changed since the first version, so rows written before an upgrade keep deciding.
 *
 * `ll`/`lu` hold a learned limit and its lapse time; `due_ms` is when the row is back to default
 * if nothing touches it (indexed for the sweep). `due_ms = -1` marks a row that only exists
 * inside one transaction (a placeholder taken for locking, or state deleted mid-batch); such
 * rows are removed before the transaction commits.
 *
 * fillfactor 70 leaves room on each page for the next version of a row, so an update that keeps
 * `due_ms` (every take inside one fixed window) is a HOT update: no index entries, less WAL.
 *
 * `key` is COLLATE "C": lookups compare bytes, and the lock order (sorted keys) does not depend
 * on the database's locale.
 */
export function migrationStatements(names: SqlNames): string[] {
  const t = names.qualifiedTable;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${names.schema}`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  key    text COLLATE "C" PRIMARY KEY,
  due_ms bigint NOT NULL,
  ll     bigint NOT NULL DEFAULT 0,
  lu     bigint NOT NULL DEFAULT 0,
  a      bigint,
  b      bigint,
  c      bigint,
  xs     bigint[],
  ys     bigint[],
  ids    text[]
) WITH (fillfactor = 70)`,
    `CREATE INDEX IF NOT EXISTS ${names.dueIndex} ON ${t} (due_ms)`,
    nowFunctionSql(names),
    executeFunctionSql(names),
    dropOtherOverloadsSql(names),
  ];
}

/**
 * CREATE OR REPLACE keeps the function's identity only while its argument list stays the same; a
 * sluice version that changes it would otherwise leave the old overload behind, still callable by
 * processes not yet upgraded (and computing with the old rules). Dropping it makes them fail
 * loudly (42883, "run migrate()") instead.
 */
function dropOtherOverloadsSql(names: SqlNames): string {
  const current = `${names.executeFn}(${EXECUTE_ARGUMENT_TYPES.join(", ")})`;
  return `DO $sluice$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = ${literal(names.schema)}::regnamespace
      AND p.proname = ${literal(names.executeFnName)}
      AND p.oid <> ${literal(current)}::regprocedure
  LOOP
    EXECUTE 'DROP FUNCTION ' || f::text;
  END LOOP;
END
$sluice$`;
}

// Only ever applied to validated identifiers (no quotes inside): a plain SQL string literal.
const literal = (s: string) => `'${s}'`;

/** Deletes up to `$1` rows whose due time has passed; skips rows a decision holds. */
export function sweepSql(names: SqlNames): string {
  const t = names.qualifiedTable;
  return `WITH due AS (
  SELECT key FROM ${t}
  WHERE due_ms >= 0 AND due_ms < ${names.nowFn}()
  ORDER BY due_ms
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
DELETE FROM ${t} s USING due WHERE s.key = due.key`;
}
