import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { withKindsReference } from "./kinds-docs.js";

describe("generated docs", () => {
  it("the kinds table in docs/stores/writing-a-store.md is up to date (run: npm run gen:kinds)", () => {
    const doc = readFileSync(new URL("../docs/stores/writing-a-store.md", import.meta.url), "utf8");
    expect(doc).toBe(withKindsReference(doc));
  });
});
