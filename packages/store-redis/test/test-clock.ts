import { createHash } from "node:crypto";
import { compilePolicies, type Store, type StoreRequest, type StoreResult } from "@sluice/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { DECIDE_LUA, decideScript, RedisStore, type RedisStoreOptions } from "../src/index.js";
import { deleteKeys, keysFor, REDIS_URL, request, uniquePrefix } from "./helpers.js";

const YEAR_MS = 365 * 86_400_000;

const SERVER_CLOCK =
  "local time = redis.call('TIME')\n" +
  "local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)\n";
const LEASE_EXPIRY = "call('PEXPIREAT', ZKEY[i], resetAt)";
const SCOPE_EXPIRY = "'PXAT', due)";

/** Replaces the one occurrence of `from`; throws when there is not exactly one. */
function swap(script: string, from: string, to: string): string {
  const at = script.indexOf(from);
  if (at < 0 || script.indexOf(from, at + 1) >= 0) {
    throw new Error(`decide.lua no longer contains exactly one ${JSON.stringify(from)}`);
  }
  return script.slice(0, at) + to + script.slice(at + from.length);
}

/**
 * A decision script (DECIDE_LUA, or one with its common take written out) reading "now" (epoch
 * ms) from `clockKey` instead of TIME, with every absolute expiry it gives Redis moved `shiftMs`
 * later, so Redis never expires a key the fake clock still needs (the script drops entries
 * past their own due itself).
 */
export function testClockScript(clockKey: string, shiftMs: number, script = DECIDE_LUA): string {
  if (!/^[\w:.-]+$/.test(clockKey)) throw new Error(`unsafe clock key ${clockKey}`);
  if (!Number.isSafeInteger(shiftMs) || shiftMs < 0) throw new Error(`bad shift ${shiftMs}`);
  // Any other expiry or clock read would escape the test clock: refuse to run.
  const code = script.replace(/--[^\n]*/g, "");
  const timed = code.match(/'(TIME|PXAT|EXAT|PX|EX|P?EXPIRE(AT)?|P?SETEX|GETEX|RESTORE)'/g) ?? [];
  if (timed.sort().join(",") !== "'PEXPIREAT','PXAT','TIME'") {
    throw new Error(`decide.lua sets times the test clock does not handle: ${timed.join(",")}`);
  }
  let s = swap(
    script,
    SERVER_CLOCK,
    `local now = tonumber(redis.call('GET', '${clockKey}')) or error('test clock unset')\n`,
  );
  s = swap(s, LEASE_EXPIRY, `call('PEXPIREAT', ZKEY[i], resetAt + ${shiftMs})`);
  s = swap(s, SCOPE_EXPIRY, `'PXAT', due + ${shiftMs})`);
  return s;
}

type Eval = (...args: (string | number)[]) => Promise<unknown>;

export interface TestClockRedisStore extends Store {
  /** The real client (the store gets a proxy over it). */
  readonly client: Redis;
  readonly prefix: string;
  readonly clockKey: string;
  /** Deletes the run's keys and the clock key, then quits the client. */
  dispose(): Promise<void>;
}

/**
 * A RedisStore whose script reads the time from `clock()`: every script call is preceded, on
 * the same connection, by a SET of the clock key. Reports `clock: "injectable"`.
 */
export async function testClockRedisStore(
  clock: () => number,
  options: Omit<RedisStoreOptions, "client" | "prefix"> = {},
): Promise<TestClockRedisStore> {
  const client = new Redis(REDIS_URL);
  const prefix = uniquePrefix("clock");
  const clockKey = `${prefix}now`;
  // Expiries land at least 2 years into the real future for any time since the first clock().
  const shiftMs = Math.max(0, Date.now() - clock()) + 2 * YEAR_MS;
  // Each script the store sends, by its text: the same script at the test clock.
  const clocked = new Map<string, { script: string; sha: string }>();
  const atTestClock = (text: string) => {
    let c = clocked.get(text);
    if (c === undefined) {
      const script = testClockScript(clockKey, shiftMs, text);
      c = { script, sha: createHash("sha1").update(script).digest("hex") };
      clocked.set(text, c);
    }
    return c;
  };
  const generic = atTestClock(DECIDE_LUA);
  const loaded = await client.script("LOAD", generic.script);
  if (loaded !== generic.sha) {
    throw new Error(`SCRIPT LOAD answered ${String(loaded)}, expected ${generic.sha}`);
  }

  const real = client as unknown as { evalshaBuffer: Eval; evalBuffer: Eval };
  const withClock = (run: () => Promise<unknown>): Promise<unknown> => {
    // Not awaited: one connection runs its commands in order, so the SET lands first.
    const set = client.set(clockKey, String(clock()));
    return Promise.all([set, run()]).then(([, out]) => out);
  };
  // An EVALSHA of a script not loaded yet gets NOSCRIPT, and the store sends it with EVAL.
  const evalshaBuffer: Eval = (sha, ...rest) => {
    const text = decideScript(String(sha));
    if (text === undefined) return Promise.reject(new Error(`no decision script ${sha}`));
    return withClock(() => real.evalshaBuffer.call(client, atTestClock(text).sha, ...rest));
  };
  const evalBuffer: Eval = (script, ...rest) =>
    withClock(() => real.evalBuffer.call(client, atTestClock(String(script)).script, ...rest));
  const proxy = new Proxy(client, {
    get(target, prop) {
      if (prop === "evalshaBuffer") return evalshaBuffer;
      if (prop === "evalBuffer") return evalBuffer;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });

  const inner = new RedisStore({ ...options, client: proxy, prefix });
  // The script must answer at the test clock, not the server's.
  const probe = compilePolicies([{ kind: "fixedWindow", name: "w", limit: 1, window: "1s" }]);
  const answer = await inner.execute(request(probe, keysFor(probe, "probe"), "peek"));
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
    async dispose() {
      await deleteKeys(client, prefix);
      await client.quit();
    },
  };
}

/**
 * A test-clock store for the tests of one describe block: `ctx.now` is its clock (settable),
 * `ctx.store` the store (set before the first test, disposed after the last).
 */
export function useTestClockStore(
  startMs = 1_800_000_000_000,
  options: Omit<RedisStoreOptions, "client" | "prefix"> = {},
): {
  now: number;
  store: TestClockRedisStore;
} {
  const ctx = { now: startMs, store: undefined as unknown as TestClockRedisStore };
  beforeAll(async () => {
    ctx.store = await testClockRedisStore(() => ctx.now, options);
  });
  afterAll(() => ctx.store.dispose());
  return ctx;
}
