import { KIND_LIST, type KindSpec, type KindStateField } from "@sluice/core/store";

/**
 * Where each kind's state lives in the one state table, derived from the kinds table in core:
 *
 *   learnedLimit, learnedLimitUntilMs   ll, lu (every kind)
 *   the other scalar fields             a, b, c, in the table's order
 *   list fields                         xs, ys, in the table's order
 *   a map (lease id -> expiry)          ids (the keys) and ys (the values)
 *
 * Plus `due_ms` (DUE_FIELD) on every row. Columns are kind-agnostic so one table and one function
 * serve every kind; a test holds this layout to the one earlier versions wrote.
 */
export type Column = "ll" | "lu" | "a" | "b" | "c" | "xs" | "ys" | "ids";

export interface FieldColumns {
  readonly field: KindStateField;
  /** One column; a map has two (keys, values). */
  readonly columns: readonly Column[];
}

const LEARNED: Readonly<Record<string, Column>> = {
  learnedLimit: "ll",
  learnedLimitUntilMs: "lu",
};
const SCALAR_COLUMNS: readonly Column[] = ["a", "b", "c"];
const LIST_COLUMNS: readonly Column[] = ["xs", "ys"];

export function stateColumns(spec: KindSpec): FieldColumns[] {
  let scalars = 0;
  let lists = 0;
  return spec.state.map((field) => {
    const learned = LEARNED[field.name];
    let columns: readonly Column[] | undefined;
    if (learned !== undefined) columns = [learned];
    else if (field.shape === "scalar") columns = SCALAR_COLUMNS.slice(scalars, ++scalars);
    else if (field.shape === "list") columns = LIST_COLUMNS.slice(lists, ++lists);
    else columns = ["ids", "ys"];
    if (columns.length === 0) {
      throw new Error(`no column left for ${spec.kind}.${field.name}: the state table needs one`);
    }
    return { field, columns };
  });
}

/** Whether `field` is one of the learned-limit fields every kind shares (handled in decide.sql). */
export const isLearnedField = (field: KindStateField): boolean => field.name in LEARNED;

/** Bigints per encoded policy: the kind code, then the most parameters any kind has. */
export const POLICY_STRIDE: number = 1 + Math.max(...KIND_LIST.map((k) => k.params.length));

/** `refillEveryMs` -> `refill_every_ms`: the SQL spelling of a kinds-table name. */
export const snakeCase = (name: string): string =>
  name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The PL/pgSQL variable holding a policy parameter (`policy_refill_every_ms`). */
export const paramVariable = (name: string): string => `policy_${snakeCase(name)}`;

/** `tokenBucket` -> `token-bucket`: the kind's fragment is sql/kinds/<this>.sql. */
export const kindFileName = (kind: string): string =>
  kind.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const COLUMN_ORDER: readonly Column[] = ["ll", "lu", "a", "b", "c", "xs", "ys", "ids"];
const COLUMN_TYPES: Readonly<Record<Column, string>> = {
  ll: "bigint",
  lu: "bigint",
  a: "bigint",
  b: "bigint",
  c: "bigint",
  xs: "bigint[]",
  ys: "bigint[]",
  ids: "text[]",
};

/** The state layout as a Markdown table (docs/stores/postgres.md holds it between markers). */
export function layoutTable(): string {
  const header = `| column | type | ${KIND_LIST.map((k) => k.kind).join(" | ")} |`;
  const rule = `| --- | --- | ${KIND_LIST.map(() => "---").join(" | ")} |`;
  const rows = COLUMN_ORDER.map((column) => {
    const cells = KIND_LIST.map((spec) => {
      const held = stateColumns(spec).find((c) => c.columns.includes(column));
      if (held === undefined) return "";
      const { field, columns } = held;
      if (columns.length === 1) return `${field.name} (${field.unit})`;
      return column === columns[0]
        ? `${field.name} (keys)`
        : `${field.name} (values, ${field.unit})`;
    });
    return `| \`${column}\` | \`${COLUMN_TYPES[column]}\` | ${cells.join(" | ")} |`;
  });
  return [header, rule, ...rows].join("\n");
}
