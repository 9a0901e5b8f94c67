import { ConfigError, invalidArgument } from "./errors.js";
import type { CompiledPolicy } from "./policy/compile.js";

/** A string key `k` means `{ id: k }`. */
export type Key = string | Readonly<Record<string, string>>;

// Characters that structure a state key. Escaping them (and `%` itself) makes the layout
// injective, and keeps user text from forming a Redis Cluster hash tag of its own. NUL and lone
// surrogates are escaped too: PostgreSQL text cannot hold NUL, and UTF-8 (Redis, PostgreSQL)
// cannot carry a lone surrogate, yet any JavaScript string is a valid key. Escapes are `%XX` or,
// for surrogates, `%DXXX`: no escape is a prefix of another, so distinct keys stay distinct.
const SPECIAL = /[%:{}=,\0]|\p{Cs}/u;
const SPECIAL_G = /[%:{}=,\0]|\p{Cs}/gu;
const escapeChar = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`;

/**
 * Escapes one part of a state key so that no two distinct keys collide (`%`, `:`, `{`, `}`, `=`,
 * `,`, NUL and lone surrogates become `%XX`).
 *
 * @param s - a prefix, policy name or key field value.
 * @returns the escaped text.
 */
export function escapeKeyPart(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIAL_G, escapeChar) : s;
}

/** A user key turned into store keys: the partition and one state key per policy. */
export interface ResolvedKey {
  /** Co-location value (Redis Cluster hash tag), already escaped. */
  readonly partition: string;
  /** One state key per policy, in policy order (shared between calls: never mutate). */
  readonly keys: readonly string[];
  /**
   * Scratch for an in-process store (`Store.decideNow`): where the state of each key lives, so a
   * cached string key finds its state without looking its keys up again.
   */
  readonly handles: unknown[];
}

/**
 * Precomputed per limiter: turns a user key into state keys
 * `<prefix>:{<partition>}:<policy name>:<field>=<value>,...`, or `<prefix>:{<partition>}:<policy
 * name>` for a string key (and `{ id }`, its equal). Names and values are escaped, so a policy name
 * never contains `:` and the two forms cannot meet.
 */
export class KeyPlan {
  private readonly head: string;
  /** `}:<escaped policy name>` per policy. */
  private readonly names: readonly string[];
  private readonly scopes: readonly (readonly string[] | undefined)[];
  private readonly partitionBy: string | undefined;
  private readonly requiresPartition: boolean;

  /**
   * @param growCache - whether the cache of resolved keys may grow past its first bound for keys
   *   that keep coming back: an in-process store finds a cached key's state without a lookup
   *   (`ResolvedKey.handles`), which a remote store never does.
   */
  constructor(
    prefix: string,
    policies: readonly CompiledPolicy[],
    partitionBy: string | undefined,
    requiresPartition: boolean,
    growCache = false,
  ) {
    this.head = `${escapeKeyPart(prefix)}:{`;
    this.names = policies.map((p) => `}:${escapeKeyPart(p.name)}`);
    this.scopes = policies.map((p) => p.scope);
    this.partitionBy = partitionBy;
    this.requiresPartition = requiresPartition;
    this.strings = new ResolvedKeys(growCache);
    this.objects = new ResolvedKeys(growCache);
  }

  /** Resolved string keys, and resolved object keys by their fields (see `objectKeyId`). */
  private readonly strings: ResolvedKeys;
  private readonly objects: ResolvedKeys;

  /**
   * Resolves a user key (string or object of fields) into store keys, cached.
   *
   * @param key - the user's key.
   * @returns the partition and one state key per policy.
   * @throws SluiceError `INVALID_ARGUMENT` for a malformed key.
   */
  resolve(key: unknown): ResolvedKey {
    if (typeof key === "string") {
      // The hot path: a string key of the recent generation, found with one lookup.
      const hit = this.strings.recent.get(key);
      return hit !== undefined ? hit : this.missedString(key);
    }
    return this.resolveObjectKey(key);
  }

  private missedString(key: string): ResolvedKey {
    // resolve() found it in no recent generation already.
    return this.strings.returning(key) ?? this.strings.add(key, this.resolveString(key));
  }

  private resolveObjectKey(key: unknown): ResolvedKey {
    const id = objectKeyId(key);
    // Not a plain object of string fields: resolveObject says what is wrong.
    if (id === undefined) return this.resolveObject(key);
    const hit = this.objects.get(id);
    if (hit !== undefined) return hit;
    // Resolved from a copy of the fields, cached only if the copy still gives the same id: a
    // getter may answer otherwise the second time.
    const copy = Object.create(null) as Record<string, string>;
    for (const name of Object.keys(key as object))
      copy[name] = (key as Record<string, string>)[name]!;
    const resolved = this.resolveObject(copy);
    return objectKeyId(copy) === id ? this.objects.add(id, resolved) : resolved;
  }

  private resolveString(key: string): ResolvedKey {
    {
      if (key === "") throw invalidArgument("key must not be an empty string");
      const e = escapeKeyPart(key);
      const keys = new Array<string>(this.names.length);
      for (let i = 0; i < keys.length; i++) {
        const scope = this.scopes[i];
        if (scope !== undefined && !(scope.length === 1 && scope[0] === "id")) {
          throw invalidArgument(
            `key is the string "${key}" (field "id"), but policy ${i} is scoped by ${JSON.stringify(scope)}: use an object key`,
          );
        }
        keys[i] = [this.head, e, this.names[i]].join("");
      }
      return Object.freeze({
        partition: e,
        keys: Object.freeze(keys) as string[],
        handles: blankHandles(keys.length),
      });
    }
  }

  private resolveObject(key: unknown): ResolvedKey {
    if (key === null || typeof key !== "object" || Array.isArray(key)) {
      throw invalidArgument(
        `key must be a non-empty string or an object of string fields (got ${key === null ? "null" : Array.isArray(key) ? "array" : typeof key})`,
      );
    }
    const record = key as Record<string, unknown>;
    const names = Object.keys(record).sort();
    if (names.length === 0) throw invalidArgument("key must not be an empty object");
    for (const n of names) {
      const v = record[n];
      if (n === "") throw invalidArgument("key field names must not be empty");
      if (typeof v !== "string")
        throw invalidArgument(`key.${n} must be a string (got ${typeof v})`);
      if (v === "") throw invalidArgument(`key.${n} must not be an empty string`);
    }
    let partition: string;
    if (this.partitionBy !== undefined) {
      const v = record[this.partitionBy];
      if (v === undefined) {
        throw invalidArgument(`key lacks the partition field "${this.partitionBy}" (partitionBy)`);
      }
      partition = escapeKeyPart(v as string);
    } else if (names.length === 1) {
      partition = escapeKeyPart(record[names[0]!] as string);
    } else if (this.requiresPartition) {
      throw new ConfigError([
        {
          path: "partitionBy",
          message: `this store keeps one decision's state together and needs partitionBy for keys with several fields (${names.join(", ")})`,
        },
      ]);
    } else partition = "";
    const all = names
      .map((n) => `${escapeKeyPart(n)}=${escapeKeyPart(record[n] as string)}`)
      .join(",");
    const keys = new Array<string>(this.names.length);
    for (let i = 0; i < keys.length; i++) {
      const scope = this.scopes[i];
      let fields = all;
      if (scope !== undefined) {
        const parts: string[] = [];
        for (const f of scope) {
          const v = record[f];
          if (v === undefined) {
            throw invalidArgument(`key lacks the field "${f}" that policy ${i} is scoped by`);
          }
          parts.push(`${escapeKeyPart(f)}=${escapeKeyPart(v as string)}`);
        }
        fields = parts.join(",");
      }
      // `{ id: p }` keyed by its partition is the string key p: same state, shorter key.
      keys[i] =
        fields === `id=${partition}`
          ? [this.head, partition, this.names[i]].join("")
          : [this.head, partition, this.names[i], ":", fields].join("");
    }
    return { partition, keys, handles: blankHandles(keys.length) };
  }
}

/**
 * Resolved keys by a string, in two generations (recent and previous) so the cache stays bounded
 * without bookkeeping per hit. Cached key strings are flat with their hashes computed, which makes
 * the store's map lookups several times cheaper than freshly concatenated strings.
 *
 * A generation holds GENERATION keys. With `grow` it doubles, up to MAX_GENERATION, when keys
 * come back (one lookup in RETURNING of a generation's, or more): the keys in use then outnumber
 * it, and every one of them would otherwise miss the cache (measured with an in-process store,
 * 150,000 keys taken at random: a take several times slower). A key comes back when it is found in
 * the previous generation, or when it misses both but its fingerprint is still in `seen`: keys
 * taken in turn return only after both generations have let them go, and would never make it grow
 * otherwise. Keys seen once, however many, never make it grow, and make a grown one shrink back.
 */
class ResolvedKeys {
  private static readonly GENERATION = 16_384;
  private static readonly MAX_GENERATION = 131_072;
  private static readonly RETURNING = 16;
  /** Read directly by KeyPlan.resolve for string keys (see there). */
  recent = new Map<string, ResolvedKey>();
  private previous = new Map<string, ResolvedKey>();
  private generation = ResolvedKeys.GENERATION;
  /** Lookups this generation that found their key only in the previous one, or in `seen`. */
  private returned = 0;
  /**
   * With `grow`, from the first rotation on: a fingerprint of each key resolved afresh, in a
   * slot picked by it (a newer key takes the slot). Kept apart from the generations, so that
   * it remembers keys they have let go; 512 kB.
   */
  private seen: Int32Array | undefined;

  constructor(private readonly grow: boolean) {}

  /** The key's entry, kept for the next generation; undefined if not cached. */
  get(key: string): ResolvedKey | undefined {
    return this.recent.get(key) ?? this.returning(key);
  }

  /** A key of the previous generation only, moved to the recent one; undefined if not there. */
  returning(key: string): ResolvedKey | undefined {
    const back = this.previous.get(key);
    if (back === undefined) return undefined;
    this.returned++;
    return this.keep(key, back);
  }

  /** A key resolved afresh (it missed both generations). */
  add(key: string, resolved: ResolvedKey): ResolvedKey {
    const seen = this.seen;
    if (seen !== undefined) {
      const print = fingerprint(key);
      const slot = print & (SEEN_SLOTS - 1);
      if (seen[slot] === print) this.returned++;
      else seen[slot] = print;
    }
    return this.keep(key, resolved);
  }

  private keep(key: string, resolved: ResolvedKey): ResolvedKey {
    if (this.recent.size >= this.generation) this.rotate();
    this.recent.set(key, resolved);
    return resolved;
  }

  /** The recent generation is full: it becomes the previous one, and may grow (see above). */
  private rotate(): void {
    if (this.grow) {
      // Keys fit until now; past one generation, remember the ones let go.
      this.seen ??= new Int32Array(SEEN_SLOTS);
      const returning = this.returned * ResolvedKeys.RETURNING;
      if (returning >= this.generation && this.generation < ResolvedKeys.MAX_GENERATION) {
        this.generation *= 2;
      } else if (4 * returning < this.generation && this.generation > ResolvedKeys.GENERATION) {
        // Hardly any key came back (fewer than one lookup in 64): new keys crowd the cache out.
        this.generation /= 2;
      }
    }
    this.returned = 0;
    this.previous = this.recent;
    this.recent = new Map();
  }
}

/** Slots of `ResolvedKeys.seen`: enough to remember most of the keys two full generations hold. */
const SEEN_SLOTS = 131_072;

/** FNV-1a of the string's UTF-16 code units, never 0 (an empty slot). */
function fingerprint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h === 0 ? 1 : h;
}

/**
 * A string that tells object keys apart by their fields in the order given: each name and value
 * prefixed by its length, so that no two lists of fields give the same string. Keys with the same
 * fields in another order get an entry of their own, resolved to the same state keys. Undefined
 * unless `key` is a non-array object whose own fields are all strings (resolveObject then says
 * what is wrong).
 */
function objectKeyId(key: unknown): string | undefined {
  if (key === null || typeof key !== "object" || Array.isArray(key)) return undefined;
  const record = key as Record<string, unknown>;
  const names = Object.keys(record);
  let id = "";
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = record[name];
    if (typeof value !== "string") return undefined;
    id += `${name.length}:${name}${value.length}:${value}`;
  }
  return id;
}

/**
 * A key's handles at their length, each from an array literal: an empty array written at index 0
 * grows to 17 slots (152 B a cached key), and a copy (`slice`) cost 60 instructions a take.
 */
function blankHandles(n: number): unknown[] {
  switch (n) {
    case 1:
      return [undefined];
    case 2:
      return [undefined, undefined];
    case 3:
      return [undefined, undefined, undefined];
    case 4:
      return [undefined, undefined, undefined, undefined];
    default:
      return [];
  }
}

/** A stable identity for a key, used for in-process FIFO queues. */
export function keyIdentity(resolved: ResolvedKey): string {
  return resolved.keys.join("\n");
}
