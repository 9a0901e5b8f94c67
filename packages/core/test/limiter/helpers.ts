import type { Policy } from "@sluice/core";
import type { Store, StoreCapabilities, StoreRequest, StoreResult } from "@sluice/core/store";
import { memoryStore } from "@sluice/store-memory";

export const T0 = Date.UTC(2026, 0, 5, 12);

/** Wraps a memory store so the test can see every request it receives. */
function recording(inner: ReturnType<typeof memoryStore>) {
  const requests: StoreRequest[] = [];
  const store: Store = {
    capabilities: inner.capabilities,
    execute(request: StoreRequest): StoreResult {
      requests.push(request);
      return inner.execute(request);
    },
  };
  return { store, requests };
}

/** A memory store on a clock the test moves, recording the requests it receives. */
export function clockedStore(startMs = T0) {
  let now = startMs;
  const { store, requests } = recording(memoryStore({ clock: () => now }));
  return {
    store,
    requests,
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** A memory store whose clock is `Date.now`, which vitest fake timers move. */
export function timerStore() {
  return recording(memoryStore({ clock: () => Date.now() }));
}

/**
 * A memory store on `clock` made to look remote: each request reaches it `wayOutMs` after it is
 * sent and its answer comes back `wayBackMs` after it decided (timers, which vitest fake timers
 * move; a delay left out sets no timer). Counts its calls and records when (its clock) it admitted
 * each take.
 */
export function distantStore(
  clock: () => number,
  delays: { wayOutMs?: number; wayBackMs?: number },
) {
  const inner = memoryStore({ clock });
  const state = { ...delays, calls: 0, admittedAt: [] as number[] };
  const after = (ms: number) => new Promise((done) => setTimeout(done, ms));
  const store: Store = {
    capabilities: { ...inner.capabilities, local: false },
    async execute(request: StoreRequest): Promise<StoreResult> {
      state.calls++;
      if (state.wayOutMs !== undefined) await after(state.wayOutMs);
      const result = inner.execute(request) as StoreResult;
      if (request.op === "take" && result[0] === 1) state.admittedAt.push(clock());
      if (state.wayBackMs !== undefined) await after(state.wayBackMs);
      return result;
    },
  };
  return { store, state };
}

export type FailureMode = "ok" | "hang" | "reject" | "throw";

/**
 * A remote-looking store that fails on purpose: it hangs, rejects or throws synchronously until
 * `mode` is set back to "ok", then answers from a memory store on `clock`. `failHung()` rejects
 * every hung call when asked, to prove late failures are absorbed.
 */
export function failingStore(
  mode: FailureMode,
  options: { clock?: () => number; capabilities?: Partial<StoreCapabilities> } = {},
) {
  const inner = memoryStore({ clock: options.clock ?? (() => Date.now()) });
  const hung: ((e: unknown) => void)[] = [];
  const ops: string[] = [];
  const state = {
    mode,
    ops,
    get calls() {
      return ops.length;
    },
    /** Rejects every call that is still hanging. */
    failHung() {
      for (const reject of hung.splice(0)) reject(new Error("connection reset (late)"));
    },
    store: undefined as unknown as Store,
  };
  state.store = {
    capabilities: {
      name: "flaky",
      clock: "server",
      local: false,
      requiresPartition: false,
      ...options.capabilities,
    },
    execute(request: StoreRequest): Promise<StoreResult> {
      ops.push(request.op);
      switch (state.mode) {
        case "hang":
          return new Promise((_, reject) => hung.push(reject));
        case "reject":
          return Promise.reject(new Error("ECONNREFUSED"));
        case "throw":
          throw new Error("socket closed");
        default:
          return Promise.resolve(inner.execute(request));
      }
    },
  };
  return state;
}

export const bucket = (capacity: number, name = "burst", every = "1s"): Policy => ({
  kind: "tokenBucket",
  name,
  capacity,
  refill: { tokens: 1, every },
});

export const fixed = (limit: number, name = "daily", size = "1d"): Policy => ({
  kind: "fixedWindow",
  name,
  limit,
  window: size,
});

export const slots = (limit: number, leaseTtl = "10s", name = "slots"): Policy => ({
  kind: "concurrency",
  name,
  limit,
  leaseTtl,
});

/** Settles pending promise callbacks without moving fake time. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Whether a promise has settled (after letting microtasks run). */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await flush();
  return done;
}
