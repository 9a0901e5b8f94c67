// Every export of every public entry point, and every member of an exported type, has a doc
// comment (the API reference has no empty entry). `npm run docs:coverage` prints the same list.
import { expect, it } from "vitest";
import { undocumented } from "./coverage.js";

it("every exported symbol has a doc comment", { timeout: 120_000 }, () => {
  const missing = undocumented();
  expect(
    missing,
    `Add a /** */ comment to each (npm run docs:coverage lists them):\n${missing.join("\n")}`,
  ).toEqual([]);
});
