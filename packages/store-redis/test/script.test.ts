import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { KIND_LIST, OP_CODES } from "@sluice/core/store";
import { describe, expect, it } from "vitest";
import { commonTakeLoopLua, commonTakeLua, kindCodes } from "../src/common-take.js";
import { DECIDE_LUA } from "../src/index.js";
import { CLOCK_SOURCE, KIND_SOURCES } from "../src/lua/decide-script.js";
import { exactClockModule } from "../src/testing/index.js";

// The common takes most layouts use, as generated from the kind modules, and the loop form of
// the script every layout can use. `UPDATE_GOLDEN=1 npx vitest run
// packages/store-redis/test/script.test.ts` rewrites them after a deliberate change.
const GOLDEN: Record<string, () => string> = {
  "token-bucket": () => commonTakeLua(kindCodes(["tokenBucket"])),
  "bucket-minute-day": () =>
    commonTakeLua(kindCodes(["tokenBucket", "fixedWindow", "fixedWindow"])),
  "bucket-window-sliding": () =>
    commonTakeLua(kindCodes(["tokenBucket", "fixedWindow", "slidingWindow"])),
  "any-layout-loop": commonTakeLoopLua,
};

const goldenFile = (name: string) => new URL(`./golden/${name}.lua`, import.meta.url);

const luaSources = () => {
  const dir = new URL("../src/lua/", import.meta.url);
  const read = (path: string) => readFileSync(new URL(path, dir), "utf8");
  return [
    read("decide.lua"),
    read("clock.lua"),
    ...readdirSync(new URL("kinds/", dir)).map((f) => read(`kinds/${f}`)),
  ].join("\n");
};

/** How often `text` occurs in `within`. */
const count = (within: string, text: string) => within.split(text).length - 1;

describe("redis store: the decision script", () => {
  it.each(Object.entries(GOLDEN))("generates the checked-in common take %s", (name, generate) => {
    const generated = generate();
    if (process.env.UPDATE_GOLDEN) writeFileSync(goldenFile(name), generated);
    expect(generated).toBe(readFileSync(goldenFile(name), "utf8"));
  });

  it("holds one module per kind of the kinds table, in the order of their codes", () => {
    expect(Object.keys(KIND_SOURCES).sort()).toEqual(KIND_LIST.map((k) => k.kind).sort());
    let at = 0;
    for (const spec of KIND_LIST) {
      // Included in the general path's builder, two spaces in.
      const source = KIND_SOURCES[spec.kind]!.replace(/^(?=.)/gm, "  ");
      expect(count(DECIDE_LUA, source)).toBe(1);
      const next = DECIDE_LUA.indexOf(source.split("\n")[0]!);
      expect(next).toBeGreaterThan(at);
      at = next;
      // Its parameters by the table's names.
      const names = spec.params.map((p) => `'${p.name}'`).join(", ");
      expect(DECIDE_LUA).toContain(`KIND_PARAMS[${spec.code}] = ${spec.kind}, { ${names} }`);
    }
  });

  it("knows the op codes of @sluice/core/store", () => {
    for (const code of Object.values(OP_CODES)) expect(DECIDE_LUA).toContain(`'${code}'`);
  });

  it("reads the clock in one place, and moves every expiry it gives Redis by the clock's shift", () => {
    const withoutClock = DECIDE_LUA.replace(CLOCK_SOURCE, "").replace(/--[^\n]*/g, "");
    expect(count(DECIDE_LUA, CLOCK_SOURCE)).toBe(1);
    // (A common take copies the reading into a local of its own: `local now = now`.)
    expect(withoutClock).not.toMatch(/\bTIME\b|\blocal now\b(?! = now\n)/);
    expect(withoutClock).toMatch(/\blocal now = now\n/);
    const expiries = withoutClock.match(/'(PXAT|EXAT|PX|EX|P?EXPIRE(AT)?|P?SETEX|GETEX)'[^\n]*/g);
    expect(expiries).toHaveLength(2);
    for (const expiry of expiries!) expect(expiry).toContain("+ expiryShiftMs");
    // The exact clock replaces that module whole.
    expect(exactClockModule("t:now", 5)).toMatch(/local now = .*\nlocal expiryShiftMs = 5\n$/);
  });

  it("writes each formula once: the bucket's reset and the sliding window's cut-off", () => {
    const lua = luaSources();
    expect(count(lua, "-consumed / refillTokens")).toBe(2); // the bucket's reset, the pool's
    expect(count(lua, "(now - windowMs) / precisionMs")).toBe(1);
    // Every function of a kind module is defined once in all the Lua.
    for (const source of Object.values(KIND_SOURCES)) {
      for (const [, name] of source.matchAll(/^local function (\w+)/gm)) {
        expect(count(lua, `local function ${name}(`)).toBe(1);
      }
    }
  });
});
