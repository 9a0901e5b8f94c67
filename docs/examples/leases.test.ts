import { memoryStore } from "@sluice/store-memory";
import { expect, it } from "vitest";
import { main } from "./leases.js";

it("runs the leases example and releases every slot it took", async () => {
  const lines: string[] = [];
  await main(memoryStore(), (line: string) => lines.push(line));
  expect(lines).toEqual([
    "run: response body",
    "tryAcquire: allowed=true lease=true",
    "acquire: live=true free slots=1",
    "after the block: free slots=2",
  ]);
});
