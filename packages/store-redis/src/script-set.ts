import { createHash } from "node:crypto";
import { commonTakeLoopLua, commonTakeLua, hasCommonTake } from "./common-take.js";
import { CLOCK_SOURCE } from "./lua/decide-script.js";
import { assembleScript } from "./script.js";

/** A decision script: the one every layout can use, or one with a common take for some kinds. */
export class DecideScript {
  readonly sha: string;
  constructor(
    /** Batches key on it: "" for the script every layout can use, else the kinds. */
    readonly id: string,
    private readonly kinds: readonly number[] | null,
    private readonly clock: string,
  ) {
    this.sha = createHash("sha1").update(this.text).digest("hex");
  }

  /** Made again when needed (NOSCRIPT, migrate): only the SHA1 stays in memory. */
  get text(): string {
    return assembleScript(
      this.kinds === null ? commonTakeLoopLua() : commonTakeLua(this.kinds),
      this.clock,
    );
  }
}

/** Every script made in this process, by SHA1 (they never change). */
const bySha = new Map<string, DecideScript>();

/**
 * The scripts of one clock module: the one every layout can use, and one per sequence of kinds
 * that has a common take, made on first use.
 */
export class ScriptSet {
  readonly generic: DecideScript;
  private readonly byKinds = new Map<string, DecideScript>();

  constructor(private readonly clock: string = CLOCK_SOURCE) {
    this.generic = new DecideScript("", null, clock);
    bySha.set(this.generic.sha, this.generic);
  }

  /** The script for `kinds` (wire codes), or undefined when they have no common take. */
  forKinds(kinds: readonly number[]): DecideScript | undefined {
    const id = kinds.join(",");
    let script = this.byKinds.get(id);
    if (script === undefined) {
      if (!hasCommonTake(kinds)) return undefined;
      script = new DecideScript(id, kinds.slice(), this.clock);
      this.byKinds.set(id, script);
      bySha.set(script.sha, script);
    }
    return script;
  }

  /** A script made before, by its id. */
  byId(id: string): DecideScript | undefined {
    return id === "" ? this.generic : this.byKinds.get(id);
  }
}

/** The scripts that read Redis' clock: what every store sends unless a test gives it others. */
export const SERVER_SCRIPTS = new ScriptSet();

/**
 * The text of a decision script a store in this process has used, by its SHA1 (undefined for a
 * SHA1 no store has used).
 */
export function decideScript(sha: string): string | undefined {
  return bySha.get(sha)?.text;
}

/** How a test adapter hands a store other scripts (an exact clock): not part of the options. */
export const SCRIPTS = Symbol("sluice.redis.scripts");
