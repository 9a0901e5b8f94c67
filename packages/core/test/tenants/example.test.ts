import { readFileSync } from "node:fs";
import { keapProfiles } from "@sluice/adapter-keap";
import { createTenantRegistry, type Profiles, parseTenantConfig } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";

const example: unknown = JSON.parse(
  readFileSync(new URL("../../../../examples/tenants.json", import.meta.url), "utf8"),
);

// The Keap profiles as they ship: `{ policies, partitionBy }` each.
const profiles: Profiles = keapProfiles;
// The same policies as plain arrays, the other profile shape the registry takes.
const arrays: Profiles = Object.fromEntries(
  Object.entries(keapProfiles).map(([name, p]) => [name, p.policies]),
);

describe("examples/tenants.json", () => {
  it("parses with the Keap profiles and every tenant gets a limiter", () => {
    const cfg = parseTenantConfig(example, { profiles });
    const reg = createTenantRegistry({ config: cfg, store: memoryStore(), profiles });
    for (const id of reg.tenants()) expect(reg.limiter(id)).toBe(reg.limiter(id));
    reg.close();
  });

  it("parses with the plain policy arrays API.md documents for profiles", () => {
    expect(() => parseTenantConfig(example, { profiles: arrays })).not.toThrow();
  });
});
