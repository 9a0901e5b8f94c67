import { KIND_LIST } from "@sluice/core/store";
import { CLOCK_SOURCE, DECIDE_SOURCE, KIND_SOURCES } from "./lua/decide-script.js";

/**
 * A decision script, assembled from decide.lua and the modules it includes (`-- @include <part>`
 * lines): the clock module (Redis' clock, or a test clock), one module per policy kind in the
 * order of the kinds table, the table's codes and parameter names, and a common take written
 * for one sequence of kinds ("" for the script every layout can use).
 */
export function assembleScript(commonTake = "", clock: string = CLOCK_SOURCE): string {
  return DECIDE_SOURCE.replace(/^( *)-- @include ([\w-]+)\n/gm, (_, indent: string, part: string) =>
    indented(includedPart(part, commonTake, clock), indent),
  );
}

function includedPart(part: string, commonTake: string, clock: string): string {
  switch (part) {
    case "clock":
      return clock;
    case "lease-kinds":
      return leaseKinds();
    case "kinds":
      return KIND_LIST.map((spec) => kindSource(spec.kind)).join("\n");
    case "kind-registry":
      return kindRegistry();
    case "common-take":
      return commonTake;
    default:
      throw new Error(`decide.lua includes an unknown part "${part}"`);
  }
}

/** The module of `kind` (kinds/<kind>.lua), which must define the kind's table by its name. */
export function kindSource(kind: string): string {
  const source = KIND_SOURCES[kind];
  if (source === undefined) throw new Error(`no Lua module for the kind ${kind}`);
  if (!new RegExp(`^local ${kind} = `, "m").test(source)) {
    throw new Error(`kinds/${kind}.lua does not define the table ${kind}`);
  }
  return source;
}

/** Codes (as ARGV strings) of the kinds whose state holds leases: each has a key of its own. */
function leaseKinds(): string {
  const codes = KIND_LIST.filter((spec) => spec.state.some((f) => f.shape === "map")).map(
    (spec) => `['${spec.code}'] = true`,
  );
  return `-- Kinds whose leases live in a set at the policy's own key (from the kinds table).
local LEASE_KINDS = { ${codes.join(", ")} }
`;
}

/** The kind modules by code, with each kind's parameter names in wire order. */
function kindRegistry(): string {
  const lines = KIND_LIST.map((spec) => {
    const names = spec.params.map((p) => `'${p.name}'`).join(", ");
    return `KIND[${spec.code}], KIND_PARAMS[${spec.code}] = ${spec.kind}, { ${names} }`;
  });
  return `-- Each kind's module and parameter names (in wire order), by code: the kinds table of
-- @sluice/core/store.
local KIND, KIND_PARAMS = {}, {}
${lines.join("\n")}
`;
}

function indented(text: string, indent: string): string {
  if (indent === "" || text === "") return text;
  return text.replace(/^(?=.)/gm, indent);
}
