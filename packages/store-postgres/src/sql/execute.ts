import { DECIDE_FUNCTION_TEMPLATE } from "./function.generated.js";
import type { SqlNames } from "./names.js";

/** The function's argument types, in order (its identity, for dropping older overloads). */
export const EXECUTE_ARGUMENT_TYPES = [
  "bigint[]",
  "integer[]",
  "integer[]",
  "text[]",
  "integer[]",
  "text",
  "bigint[]",
  "text[]",
  "bigint[]",
  "bigint[]",
  "bigint[]",
  "bigint[]",
  "boolean",
  "bigint[]",
] as const;

/**
 * The decision function for one table: decide.sql with each kind's fragment from sql/kinds/
 * (assembled at build time into function.generated.ts), reading the clock from `nowFunctionSql`.
 */
export function executeFunctionSql(n: SqlNames): string {
  return DECIDE_FUNCTION_TEMPLATE.replaceAll("{{table}}", n.qualifiedTable)
    .replaceAll("{{execute}}", n.executeFn)
    .replaceAll("{{now}}", n.nowFn);
}

/** The server clock in epoch ms, as every decision and the sweep read it. */
export const SERVER_CLOCK_SQL =
  "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/**
 * The store's one clock: `<table>_now()`, epoch ms. The decision function and the sweep read the
 * time only through it, so an exact-clock test replaces this function and nothing else
 * (`@sluice/store-postgres/testing`). A one-line SQL function: the planner inlines it, so it
 * costs what the expression would.
 */
export function nowFunctionSql(n: SqlNames, body: string = SERVER_CLOCK_SQL): string {
  return `CREATE OR REPLACE FUNCTION ${n.nowFn}() RETURNS bigint LANGUAGE sql VOLATILE AS $sluice$ ${body} $sluice$`;
}
