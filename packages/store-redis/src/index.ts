import { endianness } from "node:os";
import { ConfigError, type ConfigIssue, type SluiceError } from "@sluice/core";
import {
  type CompiledPolicy,
  describeValue,
  KINDS,
  opCode,
  optionsObject,
  paramValues,
  RESULT_HEADER,
  RESULT_STRIDE,
  type Store,
  type StoreCapabilities,
  type StoreRequest,
  type StoreResult,
  unknownOptionIssues,
} from "@sluice/core/store";
import type { Cluster, Redis } from "ioredis";
import { classifyError } from "./classify-error.js";
import { splitStateKey } from "./scope-key.js";
import { type DecideScript, SCRIPTS, type ScriptSet, SERVER_SCRIPTS } from "./script-set.js";

export { classifyError } from "./classify-error.js";
export { decideScript } from "./script-set.js";

/** Options of `redisStore`. */
export interface RedisStoreOptions {
  /** Your ioredis `Redis` or `Cluster` instance. The store never closes it. */
  client: Redis | Cluster;
  /**
   * Prepended verbatim to every key (default ""). It may not contain `{` or `}`: a brace there
   * would become the Redis Cluster hash tag and split one decision over several slots.
   */
  prefix?: string;
  /**
   * Most decisions sent in one script call (default 32; 1 sends each on its own). Decisions made
   * in one turn of the event loop share a call (on a Cluster: those of one partition), and so do
   * those made while the store has two calls in flight.
   */
  maxBatch?: number;
  /**
   * How many sequences of policy kinds get a script of their own, whose common take is written
   * out for those kinds (default 16; 0: every decision uses the one script). A limiter whose
   * policies share one key and have no concurrency policy (at most 6 policies) has such a
   * sequence; the first ones seen get the scripts, the rest use the one script.
   */
  specializedScripts?: number;
}

const OPTION_NAMES = [
  "client",
  "prefix",
  "maxBatch",
  "specializedScripts",
] as const satisfies readonly (keyof RedisStoreOptions)[];

/**
 * The decision script every layout can use (assembled from decide.lua, the clock and the kind
 * modules), as the store sends it to Redis.
 */
export const DECIDE_LUA: string = SERVER_SCRIPTS.generic.text;

/** The script's SHA1, for EVALSHA (and for `SCRIPT EXISTS` when debugging). */
export const DECIDE_SHA: string = SERVER_SCRIPTS.generic.sha;

/** Parameters sent per policy: the most any kind has (unused places are 0). */
const PARAM_PLACES = 3;

/**
 * The script's parameters of each policy, once per list: its kind code, then its parameters in
 * the kinds table's order.
 */
function encodePolicies(policies: readonly CompiledPolicy[]): number[] {
  const args: number[] = [];
  for (const p of policies) {
    const values = paramValues(p);
    args.push(KINDS[p.kind].code);
    for (let k = 0; k < PARAM_PLACES; k++) args.push(values[k] ?? 0);
  }
  return args;
}

/**
 * What the script needs to know about one limiter's keys, shared by every decision of the same
 * policy list and key shape: the policies' parameters, each policy's name and scope key index.
 * Sent once per script call however many decisions use it.
 */
class Layout {
  /** Each policy's limit as configured: what a short answer (an admitted common take) means. */
  readonly limits: readonly number[];
  constructor(
    readonly args: readonly (string | number)[],
    /** Policies, for the result length. */
    readonly n: number,
    /** The script its decisions go to. */
    readonly script: DecideScript,
  ) {
    this.limits = Array.from({ length: n }, (_, i) => args[3 + 6 * i] as number);
  }
}

/** encode()'s answer for the common decision (a take of cost 1, nothing else), sent as -layout. */
const TAKE_ONE: readonly (string | number)[] = Object.freeze(["t", 1]);

/** The KEYS and layout of one resolved key. */
interface EncodedKeys {
  readonly policies: readonly CompiledPolicy[];
  /** Scope keys (prefixed), then the lease set of each concurrency policy. */
  readonly keys: readonly string[];
  readonly layout: Layout;
}

function encodeBounds(bounds: readonly (readonly number[] | undefined)[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = bounds[i];
    if (b === undefined) out.push(0);
    else out.push(b.length, ...b);
  }
  return out;
}

/** ioredis has these at runtime (every command has a Buffer-replying twin); its typings omit them. */
interface BufferScripting {
  evalshaBuffer(...args: (string | number)[]): Promise<unknown>;
  evalBuffer(...args: (string | number)[]): Promise<unknown>;
}

function isIoredisClient(value: unknown): value is Redis | Cluster {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Redis).call === "function" &&
    typeof (value as Redis).script === "function"
  );
}

/**
 * Redis / Valkey / Redis Cluster store: every decision is one EVALSHA of the decision script
 * (decide.lua with its modules), which reads the clock with `TIME`, so client clocks never matter.
 */
export class RedisStore implements Store {
  readonly capabilities: StoreCapabilities;
  private readonly client: Redis | Cluster;
  private readonly prefix: string;
  // Hot-path caches keyed by identity: the engine passes the same policy array for every
  // request of a limiter, the same keys array for every request of a (cached) string key and
  // the same bounds array until the window moves on.
  private readonly policyCache = new WeakMap<readonly CompiledPolicy[], PolicyLayouts>();
  private readonly keyCache = new WeakMap<readonly string[], EncodedKeys>();
  private readonly boundsCache = new WeakMap<object, number[]>();
  private readonly maxBatch: number;
  private readonly specializedScripts: number;
  /** Kind sequences given a script of their own so far. */
  private readonly specialized = new Set<string>();
  /** The scripts this store sends: Redis' clock, or an exact clock a test adapter gave it. */
  private readonly scripts: ScriptSet;
  /** Per script (and on a Cluster per partition): the calls in flight and the batches waiting. */
  private readonly lanes = new Map<string, Lane>();
  /** Lanes whose open batch goes out at the end of this turn of the event loop. */
  private readonly due: Lane[] = [];

  constructor(options: RedisStoreOptions) {
    const checked = optionsObject(options, "redisStore", false);
    const issues: ConfigIssue[] = [];
    unknownOptionIssues(checked, OPTION_NAMES, issues);
    const {
      client,
      prefix = "",
      maxBatch = 32,
      specializedScripts = 16,
    } = checked as unknown as RedisStoreOptions;
    if (!isIoredisClient(client)) {
      issues.push({
        path: "client",
        message: "client must be an ioredis Redis or Cluster instance",
      });
    }
    if (typeof prefix !== "string" || /[{}]/.test(prefix)) {
      issues.push({
        path: "prefix",
        message:
          "prefix must be a string without { or } (a brace would change the Redis Cluster hash slot)",
      });
    }
    const keyPrefix = (client as { options?: { keyPrefix?: unknown } } | undefined)?.options
      ?.keyPrefix;
    if (typeof keyPrefix === "string" && /[{}]/.test(keyPrefix)) {
      issues.push({
        path: "client.options.keyPrefix",
        message:
          "the client's keyPrefix must not contain { or } (it would move keys to another slot)",
      });
    }
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
      issues.push({
        path: "maxBatch",
        message: `maxBatch must be a positive integer (got ${describeValue(maxBatch)})`,
      });
    }
    if (!Number.isSafeInteger(specializedScripts) || specializedScripts < 0) {
      issues.push({
        path: "specializedScripts",
        message: `specializedScripts must be a non-negative integer (got ${describeValue(specializedScripts)})`,
      });
    }
    if (issues.length > 0) throw new ConfigError(issues);
    this.specializedScripts = specializedScripts;
    this.scripts = (options as { [SCRIPTS]?: ScriptSet })[SCRIPTS] ?? SERVER_SCRIPTS;
    this.client = client;
    this.prefix = prefix;
    this.maxBatch = maxBatch;
    this.capabilities = Object.freeze({
      name: "redis",
      clock: "server",
      local: false,
      // A Cluster serves one script call from one slot: one decision's keys must share a tag.
      requiresPartition: client.isCluster === true,
    });
  }

  execute(request: StoreRequest): Promise<StoreResult> {
    let ks: EncodedKeys;
    let args: readonly (string | number)[];
    try {
      ks = this.keysOf(request);
      args = this.encode(request);
    } catch (e) {
      return Promise.reject(e);
    }
    // On a Cluster one script call serves one slot: decisions batch by partition (the hash
    // tag). A single server takes the decisions of one turn in one call per script.
    const script = ks.layout.script;
    const group = this.capabilities.requiresPartition
      ? `${script.id}|${request.partition}`
      : script.id;
    let lane = this.lanes.get(group);
    if (lane === undefined) {
      lane = new Lane(group);
      this.lanes.set(group, lane);
    }
    let batch = lane.open;
    if (batch === undefined) {
      batch = new Batch(script);
      lane.open = batch;
      // With a lane's calls all in flight, the batch fills until one answers (see `next`).
      if (lane.calls < LANE_CALLS) {
        if (this.due.length === 0) soon(this.flushDue);
        this.due.push(lane);
      }
    }
    const promise = batch.add(ks, args, request.deadlineMs);
    if (batch.size >= this.maxBatch) {
      lane.open = undefined;
      if (lane.calls < LANE_CALLS) this.send(lane, batch);
      else lane.full.push(batch);
    }
    return promise;
  }

  private readonly flushDue = (): void => {
    const due = this.due.splice(0);
    for (const lane of due) {
      const batch = lane.open;
      if (batch !== undefined && lane.calls < LANE_CALLS) {
        lane.open = undefined;
        this.send(lane, batch);
      }
    }
  };

  /** A call of `lane` answered: what waited goes next, oldest first. */
  private next(lane: Lane): void {
    lane.calls--;
    const batch = lane.full.shift() ?? lane.open;
    if (batch !== undefined) {
      if (batch === lane.open) lane.open = undefined;
      this.send(lane, batch);
    } else if (lane.calls === 0) {
      // Idle: a Cluster's partitions would otherwise leave a lane each behind.
      this.lanes.delete(lane.group);
    }
  }

  private send(lane: Lane, batch: Batch): void {
    lane.calls++;
    const client = this.client;
    // evalshaBuffer gets the script's numbers as one binary string (callBuffer would too, but
    // ioredis auto-pipelining breaks it); a client without it (a test double) gets integers.
    const buffers = client as unknown as BufferScripting;
    const binary = typeof buffers.evalshaBuffer === "function";
    const args = batch.callArgs(binary);
    const run = (script: boolean): Promise<unknown[]> => {
      if (!binary) return client.call(script ? "eval" : "evalsha", args) as Promise<unknown[]>;
      return (script ? buffers.evalBuffer(...args) : buffers.evalshaBuffer(...args)) as Promise<
        unknown[]
      >;
    };
    run(false)
      .then(undefined, (e: unknown) => {
        if (!(e instanceof Error && e.message.startsWith("NOSCRIPT"))) throw e;
        // A server that lost its script cache (restart, failover, SCRIPT FLUSH): send the body
        // once with EVAL, which caches it again for the following EVALSHAs.
        args[0] = batch.script.text;
        return run(true);
      })
      .then(
        (out) => {
          this.next(lane);
          batch.settle(out, binary);
        },
        (e: unknown) => {
          this.next(lane);
          batch.fail(classifyError(e));
        },
      );
  }

  /**
   * Loads the script every layout uses, and those this store has made so far, on the server
   * (every master of a Cluster). Optional: EVALSHA falls back to EVAL once per script and server.
   */
  async migrate(): Promise<void> {
    try {
      const client = this.client;
      const targets = client.isCluster ? (client as Cluster).nodes("master") : [client as Redis];
      const texts = ["", ...this.specialized].map((id) => this.scripts.byId(id)!.text);
      await Promise.all(targets.flatMap((node) => texts.map((text) => node.script("LOAD", text))));
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** The client is yours: closing the store leaves it open. */
  async close(): Promise<void> {}

  private keysOf(request: StoreRequest): EncodedKeys {
    const { policies } = request;
    let ks = this.keyCache.get(request.keys);
    if (ks === undefined || ks.policies !== policies) {
      ks = this.encodeKeys(request.keys, policies);
      this.keyCache.set(request.keys, ks);
    }
    return ks;
  }

  /**
   * One decision's arguments after its layout index (A[2..] in decide.lua): op and cost, then,
   * only when the op needs them, lease id, ttl, window bounds and observations.
   */
  private encode(request: StoreRequest): readonly (string | number)[] {
    const { policies, op } = request;
    const code = opCode(request);
    const n = policies.length;
    let bounds: number[] | undefined;
    const wb = request.windowBounds;
    if (wb !== undefined) {
      bounds = this.boundsCache.get(wb);
      if (bounds === undefined) {
        bounds = encodeBounds(wb, n);
        this.boundsCache.set(wb, bounds);
      }
    }
    if (bounds === undefined && code === "t" && request.cost === 1) return TAKE_ONE;
    const reconcile = op === "reconcile";
    const lease = code === "a" || op === "release" || op === "renew";
    if (!lease && !reconcile && bounds === undefined) return [code, request.cost];
    const ttl = reconcile
      ? request.learnedLimitTtlMs
      : op === "renew"
        ? (request.leaseTtlMs ?? -1)
        : -1;
    // A[7..]: observations (reconcile), then the bounds section; indexes count from A[1].
    const obsLength = reconcile ? 3 * n : 0;
    const args: (string | number)[] = [
      code,
      request.cost,
      request.leaseId ?? "",
      ttl,
      bounds === undefined ? 0 : 7 + obsLength,
    ];
    if (reconcile) {
      const observations = request.observations;
      for (let i = 0; i < n; i++) {
        const o = observations?.[i];
        args.push(o?.remaining ?? -1, o?.limit ?? -1, o?.resetAtMs ?? -1);
      }
    }
    if (bounds !== undefined) for (let i = 0; i < bounds.length; i++) args.push(bounds[i]!);
    return args;
  }

  /**
   * The script for a layout: its own for policies sharing one key without a concurrency policy
   * (while this store has fewer than `specializedScripts` of those), else the one every layout
   * uses.
   */
  private scriptFor(policies: readonly CompiledPolicy[], scopeKeys: number): DecideScript {
    const generic = this.scripts.generic;
    if (scopeKeys !== 1 || this.specializedScripts === 0) return generic;
    const kinds = policies.map((p) => KINDS[p.kind].code);
    const script = this.scripts.forKinds(kinds);
    if (script === undefined) return generic;
    if (!this.specialized.has(script.id)) {
      if (this.specialized.size >= this.specializedScripts) return generic;
      this.specialized.add(script.id);
    }
    return script;
  }

  private encodeKeys(keys: readonly string[], policies: readonly CompiledPolicy[]): EncodedKeys {
    const n = policies.length;
    const scopeKeys: string[] = [];
    const names = new Array<string>(n);
    const scopes = new Array<number>(n);
    const leaseSets: string[] = [];
    let signature = "";
    for (let i = 0; i < n; i++) {
      const key = this.prefix + keys[i]!;
      const [scopeKey, name] = splitStateKey(key);
      let j = scopeKeys.indexOf(scopeKey);
      if (j < 0) j = scopeKeys.push(scopeKey) - 1;
      names[i] = name;
      scopes[i] = j + 1;
      if (policies[i]!.kind === "concurrency") leaseSets.push(key);
      signature += `${j}:${name.length}:${name};`;
    }
    let layouts = this.policyCache.get(policies);
    if (layouts === undefined) {
      layouts = { params: encodePolicies(policies), bySignature: new Map() };
      this.policyCache.set(policies, layouts);
    }
    let layout = layouts.bySignature.get(signature);
    if (layout === undefined) {
      const args: (string | number)[] = [n, scopeKeys.length];
      for (let i = 0; i < n; i++) {
        const at = 4 * i;
        const params = layouts.params;
        args.push(params[at]!, params[at + 1]!, params[at + 2]!, params[at + 3]!);
        args.push(names[i]!, scopes[i]!);
      }
      layout = new Layout(args, n, this.scriptFor(policies, scopeKeys.length));
      layouts.bySignature.set(signature, layout);
    }
    for (const k of leaseSets) scopeKeys.push(k);
    return { policies, keys: scopeKeys, layout };
  }
}

/** Layouts of one policy list, by the names and scopes of its keys. */
interface PolicyLayouts {
  readonly params: readonly number[];
  readonly bySignature: Map<string, Layout>;
}

const LITTLE_ENDIAN = endianness() === "LE";

/**
 * The answer's doubles (little endian, see decide.lua) copied into a typed array at once: reading
 * them one by one with `readDoubleLE` cost ~100 instructions each, a third of the store's client
 * work per decision.
 */
function readDoubles(buf: Buffer): Float64Array {
  const out = new Float64Array(buf.length >>> 3);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(buf.subarray(0, 8 * out.length));
  else for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(8 * i);
  return out;
}

/**
 * When an open batch goes: at the end of this turn of the event loop, so decisions made in its
 * other callbacks (an HTTP server's requests read in one poll) share the call; a tick would send
 * one call per request. Node's own, kept at load: a test's fake timers must not hold the store.
 */
const soon: (run: () => void) => void = globalThis.setImmediate;

/**
 * Script calls a lane has in flight at most. Decisions that arrive while they are all out wait and
 * go together in the next call (up to `maxBatch`), so callers spread over ticks (an HTTP server's
 * requests) share calls under load, and an idle store still sends each decision at once. Two, so
 * one call's answer is read while Redis runs the next.
 */
const LANE_CALLS = 2;

/** The calls of one script (on a Cluster, of one partition): how many are out, what waits. */
class Lane {
  calls = 0;
  /** The batch taking decisions; it goes when a call is free (or once it is full). */
  open: Batch | undefined = undefined;
  /** Full batches waiting for a call, oldest first. */
  readonly full: Batch[] = [];
  constructor(readonly group: string) {}
}

/** Decisions waiting for one script call, and who waits for each answer. */
class Batch {
  constructor(readonly script: DecideScript) {}

  private readonly keys: string[] = [];
  private readonly argv: (string | number)[] = [];
  private readonly layouts = new Map<Layout, number>();
  private readonly layoutArgv: (string | number)[] = [];
  /** Each decision's layout, to cut the answer. */
  private readonly decisions: Layout[] = [];
  private readonly resolvers: ((r: StoreResult) => void)[] = [];
  /** The earliest deadline of its decisions (0: none); the script applies nothing after it. */
  private deadline = 0;
  private readonly rejecters: ((e: SluiceError) => void)[] = [];

  get size(): number {
    return this.resolvers.length;
  }

  add(
    enc: EncodedKeys,
    args: readonly (string | number)[],
    deadlineMs: number | undefined,
  ): Promise<StoreResult> {
    // Decisions of one batch are made within one turn, or while the lane's calls were out (a
    // round trip): their deadlines all but agree. The script refuses the batch after the
    // earliest, and the gateway sends a decision refused before its own deadline again.
    if (
      deadlineMs !== undefined &&
      deadlineMs > 0 &&
      (this.deadline === 0 || deadlineMs < this.deadline)
    ) {
      this.deadline = deadlineMs;
    }
    const keys = enc.keys;
    for (let i = 0; i < keys.length; i++) this.keys.push(keys[i]!);
    const layout = enc.layout;
    let index = this.layouts.get(layout);
    if (index === undefined) {
      index = this.layouts.size + 1;
      this.layouts.set(layout, index);
      for (const a of layout.args) this.layoutArgv.push(a);
    }
    if (args === TAKE_ONE) {
      this.argv.push(-index);
    } else {
      this.argv.push(args.length + 1, index);
      for (let i = 0; i < args.length; i++) this.argv.push(args[i]!);
    }
    this.decisions.push(layout);
    return new Promise<StoreResult>((resolve, reject) => {
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
    });
  }

  /** EVALSHA arguments: sha, key count, keys, then ARGV: counts, answer form, layouts, decisions. */
  callArgs(binary: boolean): (string | number)[] {
    const nk = this.keys.length;
    const nl = this.layoutArgv.length;
    const out = new Array<string | number>(6 + nk + nl + this.argv.length);
    out[0] = this.script.sha;
    out[1] = nk;
    for (let i = 0; i < nk; i++) out[2 + i] = this.keys[i]!;
    let at = 2 + nk;
    out[at++] = this.resolvers.length;
    out[at++] = this.layouts.size;
    out[at++] = binary ? "b" : "i";
    out[at++] = this.deadline;
    for (let i = 0; i < nl; i++) out[at++] = this.layoutArgv[i]!;
    for (let i = 0; i < this.argv.length; i++) out[at++] = this.argv[i]!;
    return out;
  }

  /**
   * The script answers numbers: the store clock, then per decision allowed, lease expiry and per
   * policy limit, remaining, resetAt minus the clock, retryAfterMs; or 2 (an admitted common
   * take) and per policy remaining and resetAt minus the clock; or -1 and the number of an error
   * message. The messages follow. `binary`: the numbers come as one string of doubles.
   */
  settle(reply: unknown[], binary: boolean): void {
    const values: ArrayLike<number> = binary
      ? readDoubles(reply[0] as Buffer)
      : (reply as number[]);
    const at = (p: number): number => values[p]!;
    const now = at(0);
    let p = 1;
    const failed: [number, number][] = [];
    for (let d = 0; d < this.resolvers.length; d++) {
      const allowed = at(p);
      if (allowed === -1) {
        failed.push([d, at(p + 1)]);
        p += 2;
        continue;
      }
      const layout = this.decisions[d]!;
      const n = layout.n;
      const r = new Array<number>(RESULT_HEADER + RESULT_STRIDE * n);
      if (allowed === 2) {
        const limits = layout.limits;
        r[0] = 1;
        r[1] = now;
        r[2] = 0;
        r[3] = 0;
        p += 1;
        for (let i = 0, o = RESULT_HEADER; i < n; i++, o += RESULT_STRIDE, p += 2) {
          r[o] = limits[i]!;
          r[o + 1] = at(p);
          r[o + 2] = now + at(p + 1);
          r[o + 3] = 0;
          r[o + 4] = 0;
        }
        this.resolvers[d]!(r);
        continue;
      }
      r[0] = allowed;
      r[1] = now;
      r[2] = at(p + 1);
      r[3] = 0;
      p += 2;
      for (let i = 0, o = RESULT_HEADER; i < n; i++, o += RESULT_STRIDE, p += 4) {
        const retry = at(p + 3);
        r[o] = at(p);
        r[o + 1] = at(p + 1);
        r[o + 2] = now + at(p + 2);
        r[o + 3] = retry;
        r[o + 4] = retry !== 0 ? 1 : 0;
      }
      this.resolvers[d]!(r);
    }
    // Message k (from 1) follows the numbers: in the same array, or after the string of them.
    const base = binary ? 0 : p - 1;
    for (const [d, k] of failed) {
      const e = new Error(String(reply[base + k]));
      e.name = "ReplyError";
      this.rejecters[d]!(classifyError(e));
    }
  }

  fail(e: SluiceError): void {
    for (const reject of this.rejecters) reject(e);
  }
}

/**
 * Creates a store over your ioredis client (a `Redis` or a `Cluster`): one script call per
 * decision, at the Redis server's clock. The client stays yours: closing the store leaves it open.
 *
 * @param options - `client`, and optionally `prefix`.
 * @returns the store, for `createLimiter({ store })`.
 * @throws ConfigError for an unknown option or a bad value.
 *
 * @example
 * ```ts
 * import Redis from "ioredis";
 * const store = redisStore({ client: new Redis(process.env.REDIS_URL) });
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
