import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { tenantConfigJsonSchemaText, withReference } from "../../src/tenants/json-schema.js";

const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), "utf8");

describe("generated files", () => {
  it("tenants.schema.json matches the zod schema (run: npx tsx scripts/gen-tenants-schema.ts)", () => {
    expect(read("../../tenants.schema.json")).toBe(tenantConfigJsonSchemaText());
  });

  it("docs/configuration.md reference is up to date (run: npx tsx scripts/gen-config-docs.ts)", () => {
    const doc = read("../../../../docs/configuration.md");
    expect(doc).toBe(withReference(doc));
  });
});
