/**
 * `@sluice/store-redis/testing`: a Redis store on an exact clock, for tests that step time
 * themselves (the conformance suite's fake clock, long scenarios, a window's due instant).
 *
 * The store sends the same scripts as always, assembled with another clock module: "now" is read
 * from a key the adapter sets, on the same connection, before every script call, and every
 * absolute expiry the script gives Redis is moved `expiryShiftMs` later, so Redis never expires
 * a key the test clock still needs (the script drops entries past their own due itself). Meant
 * for a single Redis server of your tests, never for production traffic.
 */
import type { Store, StoreRequest, StoreResult } from "@sluice/core/store";
import type { Redis } from "ioredis";
import { RedisStore, type RedisStoreOptions } from "../index.js";
import { SCRIPTS, ScriptSet } from "../script-set.js";

const YEAR_MS = 365 * 86_400_000;

/** The clock module of an exact-clock script: now from `clockKey`, expiries `shiftMs` later. */
export function exactClockModule(clockKey: string, shiftMs: number): string {
  if (!/^[\w:.-]+$/.test(clockKey)) throw new Error(`unsafe clock key ${clockKey}`);
  if (!Number.isSafeInteger(shiftMs) || shiftMs < 0) throw new Error(`bad shift ${shiftMs}`);
  return `-- ---- the clock (exact, for tests) ----------------------------------------------------------
-- Now is what the test set at ${clockKey}; expiries given to Redis are ${shiftMs} ms later.
local now = tonumber(call('GET', '${clockKey}')) or error('test clock unset')
local expiryShiftMs = ${shiftMs}
`;
}

type Eval = (...args: (string | number)[]) => Promise<unknown>;

/** Options of the test store whose script reads the time from a key the test sets. */
export interface ExactClockOptions extends Omit<RedisStoreOptions, "client"> {
  /** A client of a single Redis server; the store gets a proxy over it. */
  client: Redis;
  /** The test's clock (epoch ms). */
  clock: () => number;
  /** Where the script reads the time (default `<prefix>now`). */
  clockKey?: string;
}

/** A Redis store for tests, deciding at a clock the test controls. */
export interface ExactClockRedisStore extends Store {
  /** The real client. */
  readonly client: Redis;
  /** Key prefix of the store's state. */
  readonly prefix: string;
  /** The key the script reads the time from. */
  readonly clockKey: string;
}

/**
 * A RedisStore whose scripts read the time from `clock()`: every script call is preceded, on
 * the same connection, by a SET of the clock key. Reports `clock: "injectable"`.
 */
export async function exactClockRedisStore(
  options: ExactClockOptions,
): Promise<ExactClockRedisStore> {
  const { client, clock, prefix = "", ...rest } = options;
  const clockKey = options.clockKey ?? `${prefix}now`;
  // Expiries land at least 2 years into the real future for any time since the first clock().
  const shiftMs = Math.max(0, Date.now() - clock()) + 2 * YEAR_MS;
  const scripts = new ScriptSet(exactClockModule(clockKey, shiftMs));

  const real = client as unknown as { evalshaBuffer: Eval; evalBuffer: Eval };
  const withClock = (run: () => Promise<unknown>): Promise<unknown> => {
    // Not awaited: one connection runs its commands in order, so the SET lands first.
    const set = client.set(clockKey, String(clock()));
    return Promise.all([set, run()]).then(([, out]) => out);
  };
  const evalshaBuffer: Eval = (...args) => withClock(() => real.evalshaBuffer.apply(client, args));
  const evalBuffer: Eval = (...args) => withClock(() => real.evalBuffer.apply(client, args));
  const proxy = new Proxy(client, {
    get(target, prop) {
      if (prop === "evalshaBuffer") return evalshaBuffer;
      if (prop === "evalBuffer") return evalBuffer;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });

  const inner = new RedisStore({
    ...rest,
    client: proxy,
    prefix,
    [SCRIPTS]: scripts,
  } as RedisStoreOptions);
  // The script must answer at the test clock, not the server's.
  const probe: StoreRequest = {
    op: "peek",
    policies: [],
    keys: [],
    partition: "probe",
    cost: 0,
    acquire: false,
    leaseId: undefined,
    leaseTtlMs: undefined,
    observations: undefined,
    learnedLimitTtlMs: 0,
    windowBounds: undefined,
  };
  const answer = await inner.execute(probe);
  if (answer[1] !== clock()) {
    throw new Error(`the script answered at ${answer[1]}, the test clock says ${clock()}`);
  }
  return {
    capabilities: Object.freeze({ ...inner.capabilities, clock: "injectable" }),
    client,
    prefix,
    clockKey,
    execute: (req: StoreRequest): Promise<StoreResult> => inner.execute(req),
    close: () => inner.close(),
  };
}
