import { createHash } from "node:crypto";
import {
  type CompiledPolicy,
  ConfigError,
  type SluiceError,
  type Store,
  type StoreCapabilities,
  type StoreOp,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core";
import type { Cluster, Redis } from "ioredis";
import { classifyError } from "./classify-error.js";
import { DECIDE_LUA } from "./lua/decide-script.js";

export { classifyError } from "./classify-error.js";
export { DECIDE_LUA };

export interface RedisStoreOptions {
  /** Your ioredis `Redis` or `Cluster` instance. The store never closes it. */
  client: Redis | Cluster;
  /**
   * Prepended verbatim to every key (default ""). It may not contain `{` or `}`: a brace there
   * would become the Redis Cluster hash tag and split one decision over several slots.
   */
  prefix?: string;
  /**
   * Most decisions sent in one script call (default 32; 1 sends each on its own). Decisions
   * issued in the same tick share a call (on a Cluster: those of one partition).
   */
  maxBatch?: number;
}

/** The script's SHA1, for EVALSHA (and for `SCRIPT EXISTS` when debugging). */
export const DECIDE_SHA = createHash("sha1").update(DECIDE_LUA).digest("hex");

const OP_CODE: Record<StoreOp, string> = {
  take: "t",
  peek: "p",
  refund: "f",
  reconcile: "c",
  release: "l",
  renew: "r",
  reset: "x",
};
const KIND_CODE: Record<CompiledPolicy["kind"], number> = {
  tokenBucket: 1,
  pool: 2,
  fixedWindow: 3,
  slidingWindow: 4,
  concurrency: 5,
};

/** What one policy list looks like to the script, computed once per list (by identity). */
interface EncodedPolicies {
  /** 4 arguments per policy: kind, a, b, c. */
  readonly args: readonly number[];
  /** Indexes of the concurrency policies, whose learned limit lives in a second key. */
  readonly slotPolicies: readonly number[];
}

/** The KEYS of one resolved key: state keys (prefixed) then learned-limit keys. */
interface EncodedKeys {
  readonly policies: readonly CompiledPolicy[];
  readonly keys: readonly string[];
}

function encodePolicies(policies: readonly CompiledPolicy[]): EncodedPolicies {
  const args: number[] = [];
  const slotPolicies: number[] = [];
  policies.forEach((p, i) => {
    switch (p.kind) {
      case "tokenBucket":
      case "pool":
        args.push(KIND_CODE[p.kind], p.capacity, p.refillTokens, p.refillEveryMs);
        break;
      case "fixedWindow":
        args.push(KIND_CODE[p.kind], p.limit, p.windowMs, p.align === "firstUse" ? 1 : 0);
        break;
      case "slidingWindow":
        args.push(KIND_CODE[p.kind], p.limit, p.windowMs, p.precisionMs);
        break;
      case "concurrency":
        args.push(KIND_CODE[p.kind], p.limit, p.leaseTtlMs, 0);
        slotPolicies.push(i);
        break;
    }
  });
  return { args, slotPolicies };
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

function isIoredisClient(value: unknown): value is Redis | Cluster {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Redis).call === "function" &&
    typeof (value as Redis).script === "function"
  );
}

/**
 * Redis / Valkey / Redis Cluster store: every decision is one EVALSHA of `lua/decide.lua`, which
 * reads the clock with `TIME`, so client clocks never matter.
 */
export class RedisStore implements Store {
  readonly capabilities: StoreCapabilities;
  private readonly client: Redis | Cluster;
  private readonly prefix: string;
  // Hot-path caches keyed by identity: the engine passes the same policy array for every
  // request of a limiter, the same keys array for every request of a (cached) string key and
  // the same bounds array until the window moves on.
  private readonly policyCache = new WeakMap<readonly CompiledPolicy[], EncodedPolicies>();
  private readonly keyCache = new WeakMap<readonly string[], EncodedKeys>();
  private readonly boundsCache = new WeakMap<object, number[]>();
  private readonly maxBatch: number;
  private readonly pending = new Map<string, Batch>();
  private flushScheduled = false;

  constructor(options: RedisStoreOptions) {
    const { client, prefix = "", maxBatch = 32 } = options ?? ({} as RedisStoreOptions);
    if (!isIoredisClient(client)) {
      throw new ConfigError([
        { path: "client", message: "client must be an ioredis Redis or Cluster instance" },
      ]);
    }
    if (typeof prefix !== "string" || /[{}]/.test(prefix)) {
      throw new ConfigError([
        {
          path: "prefix",
          message:
            "prefix must be a string without { or } (a brace would change the Redis Cluster hash slot)",
        },
      ]);
    }
    const keyPrefix = (client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix;
    if (typeof keyPrefix === "string" && /[{}]/.test(keyPrefix)) {
      throw new ConfigError([
        {
          path: "client.options.keyPrefix",
          message:
            "the client's keyPrefix must not contain { or } (it would move keys to another slot)",
        },
      ]);
    }
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
      throw new ConfigError([{ path: "maxBatch", message: "maxBatch must be a positive integer" }]);
    }
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
    let keys: readonly string[];
    let args: (string | number)[];
    try {
      keys = this.keysOf(request);
      args = this.encode(request);
    } catch (e) {
      return Promise.reject(e);
    }
    // On a Cluster one script call serves one slot: decisions batch by partition (the hash
    // tag). A single server takes every decision of the tick in one call.
    const group = this.capabilities.requiresPartition ? request.partition : "";
    let batch = this.pending.get(group);
    if (batch === undefined) {
      batch = new Batch();
      this.pending.set(group, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushAll);
      }
    }
    const promise = batch.add(keys, args);
    if (batch.size >= this.maxBatch) {
      this.pending.delete(group);
      this.send(batch);
    }
    return promise;
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const batches = [...this.pending.values()];
    this.pending.clear();
    for (const b of batches) this.send(b);
  };

  private send(batch: Batch): void {
    const args = batch.callArgs();
    (this.client.call("evalsha", args) as Promise<unknown[]>)
      .then(undefined, (e: unknown) => {
        if (!(e instanceof Error && e.message.startsWith("NOSCRIPT"))) throw e;
        // A server that lost its script cache (restart, failover, SCRIPT FLUSH): send the body
        // once with EVAL, which caches it again for the following EVALSHAs.
        args[0] = DECIDE_LUA;
        return this.client.call("eval", args) as Promise<unknown[]>;
      })
      .then(
        (out) => batch.settle(out),
        (e: unknown) => batch.fail(classifyError(e)),
      );
  }

  /** Loads the script on the server (every master of a Cluster). Optional: EVALSHA falls back. */
  async migrate(): Promise<void> {
    try {
      const client = this.client;
      const targets = client.isCluster ? (client as Cluster).nodes("master") : [client as Redis];
      await Promise.all(targets.map((node) => node.script("LOAD", DECIDE_LUA)));
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** The client is yours: closing the store leaves it open. */
  async close(): Promise<void> {}

  private keysOf(request: StoreRequest): readonly string[] {
    const { policies } = request;
    let ks = this.keyCache.get(request.keys);
    if (ks === undefined || ks.policies !== policies) {
      ks = this.encodeKeys(request.keys, policies, this.encodedPolicies(policies));
      this.keyCache.set(request.keys, ks);
    }
    return ks.keys;
  }

  private encodedPolicies(policies: readonly CompiledPolicy[]): EncodedPolicies {
    let enc = this.policyCache.get(policies);
    if (enc === undefined) {
      enc = encodePolicies(policies);
      this.policyCache.set(policies, enc);
    }
    return enc;
  }

  /** One decision's arguments (A in decide.lua; index 0 here is A[1]). */
  private encode(request: StoreRequest): (string | number)[] {
    const { policies, op } = request;
    const n = policies.length;
    const policyArgs = this.encodedPolicies(policies).args;
    const observations = op === "reconcile" ? request.observations : undefined;
    let bounds: number[] | undefined;
    const wb = request.windowBounds;
    if (wb !== undefined) {
      bounds = this.boundsCache.get(wb);
      if (bounds === undefined) {
        bounds = encodeBounds(wb, n);
        this.boundsCache.set(wb, bounds);
      }
    }
    const obsAt = 8 + policyArgs.length;
    const boundsAt = obsAt + (observations !== undefined ? 3 * n : 0);
    const args = new Array<string | number>(boundsAt + (bounds?.length ?? 0));
    args[0] = OP_CODE[op];
    args[1] = request.cost;
    args[2] = request.acquire ? 1 : 0;
    args[3] = request.leaseId ?? "";
    args[4] = request.leaseTtlMs ?? -1;
    args[5] = request.learnedLimitTtlMs;
    args[6] = n;
    // Lua indexes from 1.
    args[7] = bounds === undefined ? 0 : boundsAt + 1;
    for (let i = 0; i < policyArgs.length; i++) args[8 + i] = policyArgs[i]!;
    if (observations !== undefined) {
      for (let i = 0; i < n; i++) {
        const o = observations[i];
        args[obsAt + 3 * i] = o?.remaining ?? -1;
        args[obsAt + 3 * i + 1] = o?.limit ?? -1;
        args[obsAt + 3 * i + 2] = o?.resetAtMs ?? -1;
      }
    }
    if (bounds !== undefined)
      for (let i = 0; i < bounds.length; i++) args[boundsAt + i] = bounds[i]!;
    return args;
  }

  private encodeKeys(
    keys: readonly string[],
    policies: readonly CompiledPolicy[],
    enc: EncodedPolicies,
  ): EncodedKeys {
    const out = keys.map((k) => this.prefix + k);
    // The learned limit of a concurrency policy sits beside its lease set. Escaping keeps ':'
    // out of every key part, so no state key ends in ":ll" and the two can never collide.
    for (const i of enc.slotPolicies) out.push(`${out[i]!}:ll`);
    return { policies, keys: out };
  }
}

/** Decisions waiting for one script call, and who waits for each answer. */
class Batch {
  private readonly keys: string[] = [];
  private readonly argv: (string | number)[] = [];
  private readonly resolvers: ((r: StoreResult) => void)[] = [];
  private readonly rejecters: ((e: SluiceError) => void)[] = [];

  get size(): number {
    return this.resolvers.length;
  }

  add(keys: readonly string[], args: readonly (string | number)[]): Promise<StoreResult> {
    for (let i = 0; i < keys.length; i++) this.keys.push(keys[i]!);
    this.argv.push(keys.length, args.length);
    for (let i = 0; i < args.length; i++) this.argv.push(args[i]!);
    return new Promise<StoreResult>((resolve, reject) => {
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
    });
  }

  /** EVALSHA arguments: sha, key count, keys, then ARGV (decision count first). */
  callArgs(): (string | number)[] {
    const out = new Array<string | number>(3 + this.keys.length + this.argv.length);
    out[0] = DECIDE_SHA;
    out[1] = this.keys.length;
    for (let i = 0; i < this.keys.length; i++) out[2 + i] = this.keys[i]!;
    const at = 2 + this.keys.length;
    out[at] = this.resolvers.length;
    for (let i = 0; i < this.argv.length; i++) out[at + 1 + i] = this.argv[i]!;
    return out;
  }

  /** The script answers, per decision, its length then its result, or -1 then an error. */
  settle(out: unknown[]): void {
    let p = 0;
    for (let d = 0; d < this.resolvers.length; d++) {
      const len = out[p] as number;
      if (len === -1) {
        const e = new Error(String(out[p + 1]));
        e.name = "ReplyError";
        this.rejecters[d]!(classifyError(e));
        p += 2;
      } else {
        this.resolvers[d]!(out.slice(p + 1, p + 1 + len) as number[]);
        p += 1 + len;
      }
    }
  }

  fail(e: SluiceError): void {
    for (const reject of this.rejecters) reject(e);
  }
}

export function redisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
