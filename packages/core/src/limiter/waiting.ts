import { LimitTimeoutError } from "../errors.js";
import type { Key } from "../keys.js";
import type { CompiledPolicy } from "../policy/compile.js";
import type { StoreAnswer } from "../store/index.js";
import { type AbortWatcher, unwatchAbort, watchAbort } from "./abort-signals.js";
import { ArrivalLead } from "./arrival-lead.js";
import { blockers, type Decision } from "./decision.js";
import type { Lease } from "./leases.js";

/** One attempt for a waiter: the decision, and the answer and policies it was made from. */
export interface Attempt {
  decision: Decision;
  lease: Lease | null;
  /** Undefined when no store decided (onStoreError "deny"/"allow"). */
  answer: StoreAnswer | undefined;
  policies: readonly CompiledPolicy[];
}

/** The parts of the limiter a wait queue drives. */
export interface WaitDriver {
  attemptTake(key: Key, cost: number): Promise<Attempt>;
  attemptAcquire(key: Key, cost: number): Promise<Attempt>;
  refund(key: Key, options: { cost: number }): Promise<void>;
}

export interface WaitRequest {
  key: Key;
  queueId: string;
  cost: number;
  acquire: boolean;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** The cost exceeds a configured limit: no wait can help. */
  neverFits: boolean;
}

export interface WaitOutcome {
  decision: Decision;
  lease: Lease | null;
}

/** One wait in a queue, linked to its neighbours so that leaving from anywhere costs O(1). */
class Waiter implements AbortWatcher {
  readonly key: Key;
  readonly cost: number;
  readonly acquire: boolean;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly deadline: number;
  done = false;
  slotPolls = 0;
  /** Attempts in a row answered without the store (onStoreError): the next one backs off. */
  storeMisses = 0;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;

  constructor(
    req: WaitRequest,
    now: number,
    readonly owner: WaitQueues,
    readonly queue: Queue,
    readonly resolve: (value: WaitOutcome) => void,
    readonly reject: (error: unknown) => void,
  ) {
    this.key = req.key;
    this.cost = req.cost;
    this.acquire = req.acquire;
    this.timeoutMs = req.timeoutMs;
    this.signal = req.signal;
    this.deadline = now + req.timeoutMs;
  }

  aborted(reason: unknown): void {
    this.owner.finish(this, reason);
  }
}

const timeOut = (w: Waiter) => w.owner.timeOut(w);

interface Queue {
  readonly id: string;
  /** The waiters in call order; each leaves the moment it is done, wherever it stands. */
  head: Waiter | undefined;
  tail: Waiter | undefined;
  running: boolean;
  /** When the head will next try (epoch ms); a newcomer cannot be admitted before it. */
  nextAt: number;
  sleepTimer: ReturnType<typeof setTimeout> | undefined;
  wakeUp: (() => void) | undefined;
  /** A wake arrived while the head's attempt was in flight: try again instead of sleeping. */
  woken: boolean;
  /**
   * The store's time (its clock) the head's sleep aims at: when the store said the cost fits.
   * NaN while the head is not sleeping out such a time (woken early, polling, store failing).
   */
  aimedMs: number;
}

// A slot can free at any moment (another process releases), so slot waits poll, backing off.
const SLOT_POLL_MIN_MS = 10;
const SLOT_POLL_MAX_MS = 500;
// Longest pause between attempts while the store fails.
const STORE_RETRY_MAX_MS = 2_000;

/** In-process FIFO per key for wait() and acquire(). */
export class WaitQueues {
  private readonly queues = new Map<string, Queue>();
  /** One per limiter: how late tries reach its store is the store's, whatever the key. */
  private readonly lead = new ArrivalLead();

  constructor(private readonly driver: WaitDriver) {}

  enqueue(req: WaitRequest): Promise<WaitOutcome> {
    return new Promise<WaitOutcome>((resolve, reject) => {
      const { signal } = req;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const now = Date.now();
      if (req.neverFits) {
        reject(
          new LimitTimeoutError(
            `cost ${req.cost} exceeds a policy's limit and can never be admitted`,
            Number.POSITIVE_INFINITY,
          ),
        );
        return;
      }
      let q = this.queues.get(req.queueId);
      if (q === undefined) {
        q = {
          id: req.queueId,
          head: undefined,
          tail: undefined,
          running: false,
          nextAt: 0,
          sleepTimer: undefined,
          wakeUp: undefined,
          woken: false,
          aimedMs: Number.NaN,
        };
        this.queues.set(req.queueId, q);
      }
      if (!req.acquire && q.head !== undefined && q.nextAt > now + req.timeoutMs) {
        reject(
          new LimitTimeoutError(
            `earliest admission is in ${q.nextAt - now} ms, beyond timeoutMs ${req.timeoutMs}`,
            q.nextAt,
          ),
        );
        return;
      }
      const w = new Waiter(req, now, this, q, resolve, reject);
      w.prev = q.tail;
      if (q.tail === undefined) q.head = w;
      else q.tail.next = w;
      q.tail = w;
      if (Number.isFinite(req.timeoutMs)) {
        // At the deadline, whatever is in flight: an attempt on a slow or failing store may take
        // up to the limiter's timeoutMs, and an admission it brings later is given back.
        w.timer = setTimeout(timeOut, req.timeoutMs, w);
      }
      if (signal) watchAbort(signal, w);
      if (!q.running) void this.pump(q);
    });
  }

  /** Something freed capacity in-process (a lease release, a reset): let the head try at once. */
  wake(queueId: string): void {
    const q = this.queues.get(queueId);
    if (q !== undefined) this.interrupt(q);
  }

  /** The policies changed: every head retries now rather than sleep out a plan made under the old. */
  wakeAll(): void {
    for (const q of this.queues.values()) this.interrupt(q);
  }

  rejectAll(error: unknown): void {
    for (const q of this.queues.values()) {
      let w = q.head;
      while (w !== undefined) {
        const next = w.next;
        this.finish(w, error);
        w = next;
      }
    }
  }

  timeOut(w: Waiter): void {
    this.finish(
      w,
      new LimitTimeoutError(
        `not admitted within timeoutMs ${w.timeoutMs}`,
        Math.max(w.queue.nextAt, w.deadline),
      ),
    );
  }

  /** Settles a waiter and takes it out of its queue at once, wherever it stands. */
  finish(w: Waiter, error: unknown, value?: WaitOutcome): void {
    if (w.done) return;
    w.done = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.signal !== undefined) unwatchAbort(w.signal, w);
    const q = w.queue;
    const wasHead = q.head === w;
    if (w.prev === undefined) q.head = w.next;
    else w.prev.next = w.next;
    if (w.next === undefined) q.tail = w.prev;
    else w.next.prev = w.prev;
    w.prev = undefined;
    w.next = undefined;
    if (value !== undefined) w.resolve(value);
    else w.reject(error);
    if (wasHead) this.interrupt(q);
  }

  private interrupt(q: Queue): void {
    q.aimedMs = Number.NaN;
    if (q.sleepTimer !== undefined) clearTimeout(q.sleepTimer);
    q.sleepTimer = undefined;
    const wake = q.wakeUp;
    q.wakeUp = undefined;
    if (wake !== undefined) wake();
    else q.woken = true;
  }

  private sleep(q: Queue, ms: number): Promise<void> {
    return new Promise((resolve) => {
      q.wakeUp = resolve;
      q.sleepTimer = setTimeout(() => {
        q.sleepTimer = undefined;
        q.wakeUp = undefined;
        resolve();
      }, ms);
    });
  }

  private async pump(q: Queue): Promise<void> {
    if (q.running) return;
    q.running = true;
    try {
      // A waiter that is done has left the queue: the head is always one still waiting.
      while (q.head !== undefined) {
        const w = q.head;
        q.woken = false;
        const delay = await this.attempt(w);
        if (delay > 0 && !w.done && !q.woken) {
          q.nextAt = Date.now() + delay;
          await this.sleep(q, delay);
        } else {
          // The next try comes at once: it aims at nothing.
          q.aimedMs = Number.NaN;
        }
      }
    } finally {
      q.running = false;
      q.nextAt = 0;
      if (q.head === undefined) this.queues.delete(q.id);
      else void this.pump(q);
    }
  }

  /** One try for the head waiter; returns how long to sleep before the next (0: move on). */
  private async attempt(w: Waiter): Promise<number> {
    let outcome: Attempt;
    try {
      outcome = w.acquire
        ? await this.driver.attemptAcquire(w.key, w.cost)
        : await this.driver.attemptTake(w.key, w.cost);
    } catch (error) {
      this.finish(w, error);
      return 0;
    }
    const { decision, lease } = outcome;
    const q = w.queue;
    const aimedMs = q.aimedMs;
    q.aimedMs = Number.NaN;
    if (outcome.answer !== undefined && !Number.isNaN(aimedMs)) {
      this.lead.observe(aimedMs, outcome.answer.nowMs);
    }
    if (decision.allowed) {
      if (w.done)
        this.giveBack(w, lease); // aborted meanwhile: nothing may be lost
      else this.finish(w, undefined, { decision, lease });
      return 0;
    }
    if (w.done) return 0;
    const now = Date.now();
    let delay = decision.retryAfterMs;
    if (outcome.answer === undefined) {
      // The store is failing (an open breaker answers at once): back off, so a wait without a
      // timeout polls the store ever less often instead of spinning, and resolves once it is back.
      w.storeMisses++;
      delay = Math.min(STORE_RETRY_MAX_MS, delay * 2 ** Math.min(w.storeMisses - 1, 6));
    } else {
      w.storeMisses = 0;
      const b = blockers(outcome.policies, outcome.answer);
      if (b.rateRetryMs === Number.POSITIVE_INFINITY) {
        this.finish(
          w,
          new LimitTimeoutError(`cost ${w.cost} can never be admitted`, Number.POSITIVE_INFINITY),
        );
        return 0;
      }
      if (now + b.rateRetryMs > w.deadline) {
        this.finish(
          w,
          new LimitTimeoutError(
            `earliest admission is in ${b.rateRetryMs} ms, beyond timeoutMs ${w.timeoutMs}`,
            now + b.rateRetryMs,
          ),
        );
        return 0;
      }
      delay = b.rateRetryMs;
      if (b.slotBlocked) {
        w.slotPolls++;
        const poll = Math.min(SLOT_POLL_MAX_MS, SLOT_POLL_MIN_MS * 2 ** Math.min(w.slotPolls, 6));
        delay = Math.max(delay, Math.min(b.slotRetryMs, poll));
      } else if (now + delay < w.deadline) {
        // A rate frees at a time the store named: aim the next try to land then, not late.
        q.aimedMs = outcome.answer.nowMs + delay;
        delay -= this.lead.ms;
      }
    }
    return Math.max(1, Math.min(delay, w.deadline - now));
  }

  private giveBack(w: Waiter, lease: Lease | null): void {
    const done = lease !== null ? lease.release() : this.driver.refund(w.key, { cost: w.cost });
    done.catch(() => {
      // The store failed: the charge lapses with the window/lease; it was reported as an event.
    });
  }
}
