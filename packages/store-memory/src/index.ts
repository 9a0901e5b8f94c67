import { ConfigError, type ConfigIssue, invalidArgument } from "@sluice/core";
import {
  describeValue,
  evaluate,
  optionsObject,
  type PolicyStateRecord,
  type Store,
  type StoreAnswer,
  type StoreCapabilities,
  type StoreRequest,
  type StoreResult,
  unknownOptionIssues,
} from "@sluice/core/store";
import { LocalAnswer } from "./local-answer.js";
import { DROPPED, decideTake, writeBack } from "./take.js";

/** Options of `memoryStore`. */
export interface MemoryStoreOptions {
  /** Epoch ms; decisions use it. Default `Date.now`. */
  clock?: () => number;
  /** Most keys held; the least recently used are evicted beyond it. Default unbounded. */
  maxKeys?: number;
}

const OPTION_NAMES = ["clock", "maxKeys"] as const satisfies readonly (keyof MemoryStoreOptions)[];

const CAPABILITIES: StoreCapabilities = Object.freeze({
  name: "memory",
  clock: "injectable",
  local: true,
  requiresPartition: false,
});

/**
 * In-process store running the reference math. State that is back to default is deleted on
 * write; state that drifts back to default untouched is swept lazily (no timers, so it never keeps
 * the process alive).
 */
export class MemoryStore implements Store {
  readonly capabilities = CAPABILITIES;
  private readonly entries = new Map<string, PolicyStateRecord>();
  private readonly clock: () => number;
  private readonly maxKeys: number;
  /** Writes since the last sweep, the size the map had after it, and its store time. */
  private writes = 0;
  private sizeAfterSweep = 0;
  private sweptAtMs = Number.NEGATIVE_INFINITY;
  /**
   * Persistent eviction cursor (Map iterators stay valid across mutation): re-iterating from the
   * head for every eviction would walk the holes earlier deletions left there.
   */
  private evictCursor: Iterator<[string, PolicyStateRecord]> | undefined;
  /** Scratch for `decideNow`: the state of each policy between check and charge, and the answer. */
  private readonly states: PolicyStateRecord[] = [];
  private readonly answer = new LocalAnswer();

  constructor(options: MemoryStoreOptions = {}) {
    const checked = optionsObject(options, "memoryStore", true);
    const issues: ConfigIssue[] = [];
    unknownOptionIssues(checked, OPTION_NAMES, issues);
    const { clock = Date.now, maxKeys = Number.POSITIVE_INFINITY } = checked as MemoryStoreOptions;
    if (typeof clock !== "function") {
      issues.push({ path: "clock", message: "clock must be a function returning epoch ms" });
    }
    if (!(maxKeys === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxKeys) && maxKeys > 0))) {
      issues.push({
        path: "maxKeys",
        message: `maxKeys must be a positive integer (got ${describeValue(maxKeys)})`,
      });
    }
    if (issues.length > 0) throw new ConfigError(issues);
    this.clock = clock;
    this.maxKeys = maxKeys;
  }

  /** Number of keys currently held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  execute(request: StoreRequest): StoreResult {
    const now = Math.floor(this.clock());
    const { keys } = request;
    const n = keys.length;
    const stored = new Array<PolicyStateRecord | undefined>(n);
    for (let i = 0; i < n; i++) stored[i] = this.entries.get(keys[i]!);
    const { result, write, states } = evaluate(request, stored, now, true);
    this.settle(keys, stored, states, write, now);
    return result;
  }

  /**
   * A take or peek of the engine's in-process fast path (`Store.decideNow`): the reference math
   * straight into a reused answer, and a state object remembered in `handles` is used as long as
   * it is still the one held for its key, so a cached key costs no lookup.
   */
  decideNow(request: StoreRequest, handles: unknown[]): StoreAnswer {
    if ((request.op !== "take" && request.op !== "peek") || request.acquire) {
      throw invalidArgument(`decideNow decides takes and peeks without a lease, not ${request.op}`);
    }
    const lru = this.maxKeys !== Number.POSITIVE_INFINITY;
    const answer = this.answer;
    // The state is written back as it is decided; what is left is the store's own upkeep.
    if (decideTake(request, handles, this.clock, this.entries, lru, this.states, answer)) {
      this.sweep(answer.nowMs);
      if (lru && this.entries.size > this.maxKeys) this.evict();
    } else if (lru && !answer.boundsNeeded) {
      this.touch(request.keys, handles as (PolicyStateRecord | undefined)[]);
    }
    return answer;
  }

  /** Writes the states of an `execute` back (or, when there is nothing to write, keeps LRU order). */
  private settle(
    keys: readonly string[],
    stored: readonly (PolicyStateRecord | undefined)[],
    states: readonly (PolicyStateRecord | undefined)[],
    write: boolean,
    now: number,
  ): void {
    const entries = this.entries;
    const n = keys.length;
    const lru = this.maxKeys !== Number.POSITIVE_INFINITY;
    if (write) {
      for (let i = 0; i < n; i++) writeBack(entries, keys[i]!, stored[i], states[i], lru);
      this.sweep(now);
      if (lru && entries.size > this.maxKeys) this.evict();
    } else if (lru) this.touch(keys, stored);
  }

  /** Moves the keys held to the recent end of the LRU order (delete + set). */
  private touch(keys: readonly string[], stored: readonly (PolicyStateRecord | undefined)[]): void {
    for (let i = 0; i < keys.length; i++) {
      const s = stored[i];
      if (s !== undefined) {
        this.entries.delete(keys[i]!);
        this.entries.set(keys[i]!, s);
      }
    }
  }

  /**
   * Drops state that drifted back to default while untouched: one full pass once the writes
   * since the last pass reach the size the map had after it (at least 1024), and either a second
   * of store time has gone by since it or the writes reach four times that size. The cost per
   * write stays constant, and the map holds at most about five times the state that is live
   * (twice, for writes spread over more than a second). A pass reads every state held: on a busy
   * store, one per write cost more memory traffic than the decision's own state.
   * (Stepping an iterator on every write cost more than the decision itself.)
   */
  private sweep(now: number): void {
    const writes = ++this.writes;
    if (writes < 1024 || writes < this.sizeAfterSweep) return;
    if (now < this.sweptAtMs + 1000 && writes < 4 * this.sizeAfterSweep) return;
    this.writes = 0;
    this.dropDue(now);
    this.sizeAfterSweep = this.entries.size;
    this.sweptAtMs = now;
  }

  /**
   * The sweep's pass, apart from `sweep`: the callback captures `now`, and a function holding a
   * captured variable allocates its context on every call, even one that returns early.
   */
  private dropDue(now: number): void {
    // forEach, not for-of: no iterator result and no [key, value] pair per entry.
    this.entries.forEach((s, key, entries) => {
      if (s.dueMs < now) {
        entries.delete(key);
        s.dueMs = DROPPED;
      }
    });
  }

  /** Drops least recently used keys until within maxKeys. */
  private evict(): void {
    while (this.entries.size > this.maxKeys) {
      this.evictCursor ??= this.entries.entries();
      const next = this.evictCursor.next();
      if (next.done) {
        this.evictCursor = undefined;
        continue;
      }
      this.entries.delete(next.value[0]);
      next.value[1].dueMs = DROPPED;
    }
  }

  async close(): Promise<void> {
    for (const s of this.entries.values()) s.dueMs = DROPPED;
    this.entries.clear();
    this.evictCursor = undefined;
  }
}

/**
 * Creates an in-process store that runs the reference math: the embedded default, and the
 * store for tests (inject a `clock` to move time without sleeping).
 *
 * @param options - `clock` (default `Date.now`), `maxKeys` (default unbounded).
 * @returns the store, for `createLimiter({ store })`.
 * @throws ConfigError for an unknown option or a bad value.
 *
 * @example
 * ```ts
 * const limiter = createLimiter({
 *   store: memoryStore(),
 *   policies: [{ kind: "fixedWindow", name: "perMinute", limit: 60, window: "1m" }],
 * });
 * ```
 */
export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
