import { readFileSync } from "node:fs";
import { keapPartitions, keapProfiles } from "@sluice/adapter-keap";
import { createTenantRegistry, type Profiles, parseTenantConfig } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";

const example: unknown = JSON.parse(
  readFileSync(new URL("../../../../examples/tenants.json", import.meta.url), "utf8"),
);

// The Keap profiles with their partition fields, in the registry's profile shape.
const profiles: Profiles = Object.fromEntries(
  Object.entries(keapProfiles).map(([name, policies]) => [
    name,
    { policies, partitionBy: keapPartitions[name as keyof typeof keapPartitions] as string },
  ]),
);

describe("examples/tenants.json", () => {
  it("parses with the Keap profiles and every tenant gets a limiter", () => {
    const cfg = parseTenantConfig(example, { profiles });
    const reg = createTenantRegistry({ config: cfg, store: memoryStore(), profiles });
    for (const id of reg.tenants()) expect(reg.limiter(id)).toBe(reg.limiter(id));
    reg.close();
  });

  it("parses with the plain policy arrays API.md documents for profiles", () => {
    expect(() => parseTenantConfig(example, { profiles: keapProfiles })).not.toThrow();
  });
});
