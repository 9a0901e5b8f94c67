import { ConfigError, type ConfigIssue, SluiceError } from "@sluice/core";
import {
  DeadlinePassedError,
  describeValue,
  optionsObject,
  RESULT_HEADER,
  RESULT_STRIDE,
  type Store,
  type StoreCapabilities,
  type StoreRequest,
  type StoreResult,
  unknownOptionIssues,
} from "@sluice/core/store";
import type { Pool, PoolClient, QueryArrayConfig } from "pg";
import { classifyError, isRequestError, isTransientConflict } from "./classify-error.js";
import { batchValues, deadlineValues } from "./encode.js";
import { migrationStatements, sweepSql } from "./sql/migrate.js";
import { type SqlNames, sqlNames } from "./sql/names.js";

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /** Your pg.Pool. The store never ends it. */
  pool: Pool;
  /** State table name (default "sluice_state"); the function is `<table>_execute`. */
  table?: string;
  /** Schema (default "public"); created by `migrate()` if missing. */
  schema?: string;
  /**
   * Most calls in flight at once (default 2). One call at a time makes the biggest batches and the
   * fewest commits; a second call leaves only while 64 requests (or `maxBatch`) are waiting, and
   * a larger backlog is shared out over the calls allowed. A partition is in at most one call in
   * flight, so its requests reach the server in issue order.
   */
  lanes?: number;
  /** Most requests in one round trip (default 256). */
  maxBatch?: number;
  /**
   * false: each call's commit does not wait for the WAL flush (`synchronous_commit = off` for that
   * transaction only). Rate-limit state is short-lived: after a server crash, forgetting the last
   * few hundred ms of decisions at most over-admits that much. Default true: the server's own
   * setting applies. Batched, the difference measured 0-20%; unbatched it is larger.
   */
  durable?: boolean;
}

const CAPABILITIES: StoreCapabilities = Object.freeze({
  name: "postgres",
  clock: "server",
  local: false,
  requiresPartition: false,
});

interface Pending {
  request: StoreRequest;
  resolve: (r: StoreResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Requests that must be waiting before a second call leaves while one is in flight. Below it, one
 * call at a time makes bigger batches and fewer commits, which measured faster (docs/stores/postgres.md
 * "Calls in flight"); above it, a second call no longer waits for the first.
 */
const SPILL = 64;

/** A call in flight: the partitions its requests belong to. */
type Call = ReadonlySet<string>;

const OPTION_NAMES = [
  "pool",
  "table",
  "schema",
  "lanes",
  "maxBatch",
  "durable",
] as const satisfies readonly (keyof PostgresStoreOptions)[];

function positiveInt(value: unknown, field: string, issues: ConfigIssue[]): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    issues.push({
      path: field,
      message: `${field} must be a positive integer (got ${describeValue(value)})`,
    });
  }
  return value as number;
}

function isPool(value: unknown): value is Pool {
  return typeof value === "object" && value !== null && typeof (value as Pool).query === "function";
}

/**
 * PostgreSQL store. Each decision is one call of `<table>_execute`, installed by `migrate()`;
 * concurrent decisions are coalesced into one call (one round trip for many decisions).
 */
export class PostgresStore implements Store {
  readonly capabilities = CAPABILITIES;
  /** The quoted SQL names (schema, table, functions) the store uses. */
  readonly names: SqlNames;
  private readonly pool: Pool;
  private readonly maxCalls: number;
  private readonly spill: number;
  private queue: Pending[] = [];
  /** The calls in flight, each as the set of its partitions. */
  private readonly calls = new Set<Call>();
  /** A dispatch is due one macrotask after a call settled. */
  private waking = false;
  /** Queue length at which another call may leave while one is in flight. */
  private spillAt = 0;
  private readonly maxBatch: number;
  private readonly executeQuery: Omit<QueryArrayConfig, "values">;
  private readonly sweepName: string;
  private idle: (() => void) | undefined;
  private closed = false;
  private readonly durable: boolean;

  constructor(options: PostgresStoreOptions) {
    const checked = optionsObject(options, "postgresStore", false);
    const issues: ConfigIssue[] = [];
    unknownOptionIssues(checked, OPTION_NAMES, issues);
    const {
      pool,
      table = "sluice_state",
      schema = "public",
      lanes = 2,
      maxBatch = 256,
      durable = true,
    } = checked as unknown as PostgresStoreOptions;
    if (!isPool(pool)) issues.push({ path: "pool", message: "pool must be a pg.Pool" });
    this.maxCalls = positiveInt(lanes, "lanes", issues);
    this.maxBatch = positiveInt(maxBatch, "maxBatch", issues);
    if (typeof durable !== "boolean") {
      issues.push({
        path: "durable",
        message: `durable must be true or false (got ${describeValue(durable)})`,
      });
    }
    const names = sqlNames(schema, table, issues);
    if (issues.length > 0 || names === undefined) throw new ConfigError(issues);
    this.names = names;
    this.pool = pool;
    this.durable = durable;
    this.spill = Math.min(SPILL, this.maxBatch);
    // Named: each connection parses and plans the call once.
    this.executeQuery = {
      name: `${this.names.statementPrefix}:execute`,
      text: `SELECT ${this.names.executeFn}($1::bigint[], $2::int[], $3::int[], $4::text[], $5::int[], $6::text, $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::boolean, $14::bigint[])`,
      rowMode: "array",
    };
    this.sweepName = `${this.names.statementPrefix}:sweep`;
  }

  execute(request: StoreRequest): Promise<StoreResult> {
    if (this.closed) {
      return Promise.reject(
        new SluiceError("STORE_UNAVAILABLE", "postgres store is closed", { retryable: false }),
      );
    }
    return new Promise<StoreResult>((resolve, reject) => {
      const queued = this.queue.push({ request, resolve, reject });
      if (this.waking) return;
      if (this.calls.size === 0 || (queued >= this.spillAt && this.calls.size < this.maxCalls)) {
        this.dispatch();
      }
    });
  }

  /**
   * Sends one call with the queued requests whose partitions no call in flight holds, oldest
   * first, at most `limit` (and `maxBatch`). A request of a partition in flight waits, and so do
   * the later ones of that partition, so each partition reaches the server in issue order.
   */
  private dispatch(limit = this.maxBatch): void {
    const queue = this.queue;
    const most = Math.min(limit, this.maxBatch);
    let batch: Pending[];
    let partitions: Set<string>;
    if (this.calls.size === 0) {
      batch = queue.length <= most ? queue : queue.slice(0, most);
      this.queue = queue.length <= most ? [] : queue.slice(most);
      partitions = new Set<string>();
      // Only a second call consults them.
      if (this.maxCalls > 1) for (const p of batch) partitions.add(p.request.partition);
    } else {
      batch = [];
      partitions = new Set<string>();
      const rest: Pending[] = [];
      for (const p of queue) {
        const part = p.request.partition;
        if (batch.length < most && !this.held(part)) {
          batch.push(p);
          partitions.add(part);
        } else {
          rest.push(p);
        }
      }
      this.queue = rest;
    }
    // Another call may join this one once `spill` more requests have queued.
    this.spillAt = this.queue.length + this.spill;
    if (batch.length === 0) return;
    this.calls.add(partitions);
    this.run(batch).then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          const r = results[i]!;
          if (r instanceof SluiceError) batch[i]!.reject(r);
          else batch[i]!.resolve(r);
        }
        this.settled(partitions);
      },
      (e: unknown) => {
        const error = classifyError(e);
        for (const p of batch) p.reject(error);
        this.settled(partitions);
      },
    );
  }

  /** Whether a call in flight holds the partition. */
  private held(partition: string): boolean {
    for (const c of this.calls) if (c.has(partition)) return true;
    return false;
  }

  /**
   * Called right after a call's promises were resolved. The next call leaves one macrotask
   * later: callers that just got their answer and ask again (a loop of takes) join it instead of
   * waiting a whole round trip for the one after (measured: batches of ~8.5 became ~13).
   */
  private settled(call: Call): void {
    this.calls.delete(call);
    if (!this.waking) {
      this.waking = true;
      setImmediate(this.wake);
    }
  }

  private readonly wake = (): void => {
    this.waking = false;
    if (this.calls.size === 0 && this.queue.length > 0) {
      // A backlog of several `spill`s is shared out over the calls allowed; less goes as one.
      const calls = Math.min(this.maxCalls, Math.floor(this.queue.length / this.spill));
      this.dispatch(Math.ceil(this.queue.length / Math.max(1, calls)));
    }
    // As in execute(): with a call in flight, another leaves only for a backlog.
    while (this.queue.length >= this.spill && this.calls.size < this.maxCalls) {
      const before = this.queue.length;
      this.dispatch();
      if (this.queue.length === before) break;
    }
    if (this.idle !== undefined && this.drained()) this.idle();
  };

  /** Nothing in flight and nothing queued. */
  private drained(): boolean {
    return this.calls.size === 0 && this.queue.length === 0 && !this.waking;
  }

  /** Results in batch order; an entry is a SluiceError where only that request failed. */
  private async run(batch: readonly Pending[]): Promise<(StoreResult | SluiceError)[]> {
    const requests = batch.map((p) => p.request);
    try {
      return split(await this.runRequests(requests), requests);
    } catch (e) {
      // One request the server refuses (a key with a NUL byte, a key too long to index) must not
      // fail the decisions batched with it: the batch was rolled back whole, so each runs again
      // alone, in the same order.
      if (requests.length === 1 || !isRequestError(e)) throw e;
    }
    const out: (StoreResult | SluiceError)[] = [];
    for (const r of requests) {
      try {
        out.push(split(await this.runRequests([r]), [r])[0]!);
      } catch (e) {
        if (!isRequestError(e)) throw e;
        out.push(classifyError(e));
      }
    }
    return out;
  }

  private async runRequests(requests: readonly StoreRequest[]): Promise<string> {
    const values = batchValues(requests);
    values.push(this.durable, deadlineValues(requests));
    try {
      return await this.call(values);
    } catch (e) {
      // The transaction was rolled back whole: running it again is exact. (Only reachable with a
      // SERIALIZABLE default isolation level or a lock taken outside this store.)
      if (!isTransientConflict(e)) throw e;
      return await this.call(values);
    }
  }

  private async call(values: unknown[]): Promise<string> {
    const res = await this.pool.query<[string]>({ ...this.executeQuery, values });
    const row = res.rows[0];
    if (row === undefined) throw new Error("the execute function returned no row");
    return row[0];
  }

  /**
   * Creates the schema, table, index and function. Idempotent and safe to run from several
   * processes at once: one transaction under an advisory lock keyed by schema and table.
   */
  async migrate(): Promise<void> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw classifyError(e);
    }
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
        this.names.statementPrefix,
      ]);
      for (const sql of migrationStatements(this.names)) await client.query(sql);
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => {});
      throw classifyError(e);
    } finally {
      client.release();
    }
  }

  /** The statements `migrate()` runs, for those who apply migrations with their own tool. */
  migrationStatements(): string[] {
    return migrationStatements(this.names);
  }

  /**
   * Deletes rows whose state is back to default (at most `limit` per call, default 1000) and
   * returns how many. Decisions also sweep a little as they go; call this from a timer if you want
   * the table tight after bursts of one-off keys.
   */
  async sweep(limit = 1000): Promise<number> {
    const issues: ConfigIssue[] = [];
    positiveInt(limit, "limit", issues);
    if (issues.length > 0) throw new ConfigError(issues);
    try {
      const res = await this.pool.query({
        name: this.sweepName,
        text: sweepSql(this.names),
        values: [limit],
      });
      return res.rowCount ?? 0;
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Stops accepting calls and waits for batches in flight. The pool stays yours to end. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.drained()) return;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
    });
  }
}

function split(text: string, requests: readonly StoreRequest[]): (StoreResult | SluiceError)[] {
  const flat = text.split(",");
  const out = new Array<StoreResult | SluiceError>(requests.length);
  let at = 0;
  for (let i = 0; i < requests.length; i++) {
    const len = RESULT_HEADER + RESULT_STRIDE * requests[i]!.policies.length;
    const r = new Array<number>(len);
    for (let j = 0; j < len; j++) r[j] = Number(flat[at + j]);
    at += len;
    // -1: it reached the store after its deadline and was not applied (decide.sql).
    out[i] = r[0] === -1 ? new DeadlinePassedError("postgres", r[1]!, requests[i]!.deadlineMs!) : r;
  }
  if (at !== flat.length) throw new Error("the execute function returned a malformed result");
  return out;
}

/**
 * Creates a store over your `pg.Pool`: one SQL function call per decision, at the database's
 * clock. Run `await store.migrate()` once to create its table and functions. The pool stays yours.
 *
 * @param options - `pool`, and optionally `table` (default `sluice_state`) and `schema` (default `public`).
 * @returns the store, for `createLimiter({ store })`.
 * @throws ConfigError for an unknown option or a bad value.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * const store = postgresStore({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * await store.migrate();
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}
