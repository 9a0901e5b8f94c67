import {
  evaluate,
  invalidArgument,
  type PolicyStateRecord,
  type Store,
  type StoreCapabilities,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core";

export interface MemoryStoreOptions {
  /** Epoch ms; decisions use it. Default `Date.now`. */
  clock?: () => number;
  /** Most keys held; the least recently used are evicted beyond it. Default unbounded. */
  maxKeys?: number;
}

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
  /** Writes since the last sweep, and the size the map had after it. */
  private writes = 0;
  private sizeAfterSweep = 0;
  /**
   * Persistent eviction cursor (Map iterators stay valid across mutation): re-iterating from the
   * head for every eviction would walk the holes earlier deletions left there.
   */
  private evictCursor: Iterator<string> | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const { clock = Date.now, maxKeys = Number.POSITIVE_INFINITY } = options;
    if (typeof clock !== "function") throw invalidArgument("memoryStore clock must be a function");
    if (!(maxKeys === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxKeys) && maxKeys > 0))) {
      throw invalidArgument(
        `memoryStore maxKeys must be a positive integer (got ${String(maxKeys)})`,
      );
    }
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
    const entries = this.entries;
    const n = keys.length;
    const stored = new Array<PolicyStateRecord | undefined>(n);
    for (let i = 0; i < n; i++) stored[i] = entries.get(keys[i]!);
    const { result, write, states } = evaluate(request, stored, now, true);
    if (write) {
      const lru = this.maxKeys !== Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const s = states[i];
        const prev = stored[i];
        if (s === undefined) {
          if (prev !== undefined) entries.delete(keys[i]!);
        } else if (s !== prev || lru) {
          // evaluate() changed an existing state in place: only new keys need a set, unless
          // maxKeys asks for LRU order (delete + set moves the key to the recent end).
          if (lru && prev !== undefined) entries.delete(keys[i]!);
          entries.set(keys[i]!, s);
        }
      }
      this.sweep(now);
      if (lru && entries.size > this.maxKeys) this.evict();
    } else if (this.maxKeys !== Number.POSITIVE_INFINITY) {
      for (let i = 0; i < n; i++) {
        const s = stored[i];
        if (s !== undefined) {
          entries.delete(keys[i]!);
          entries.set(keys[i]!, s);
        }
      }
    }
    return result;
  }

  /**
   * Drops state that drifted back to default while untouched: one full pass once the writes
   * since the last pass reach the size the map had after it (at least 1024), so the cost per
   * write stays constant and the map holds at most about twice the state that is live.
   * (Stepping an iterator on every write cost more than the decision itself.)
   */
  private sweep(now: number): void {
    if (++this.writes < 1024 || this.writes < this.sizeAfterSweep) return;
    this.writes = 0;
    for (const [key, s] of this.entries) if (s.dueMs < now) this.entries.delete(key);
    this.sizeAfterSweep = this.entries.size;
  }

  /** Drops least recently used keys until within maxKeys. */
  private evict(): void {
    while (this.entries.size > this.maxKeys) {
      this.evictCursor ??= this.entries.keys();
      const next = this.evictCursor.next();
      if (next.done) {
        this.evictCursor = undefined;
        continue;
      }
      this.entries.delete(next.value);
    }
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.evictCursor = undefined;
  }
}

export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
