import { memoryStore } from "@sluice/store-memory";
import { expect, it } from "vitest";
import { main } from "../docs/examples/getting-started.js";

it("runs the getting-started example and prints what the guide says", async () => {
  const lines: string[] = [];
  await main(memoryStore(), (line: string) => lines.push(line));
  expect(lines).toEqual([
    "take: allowed=true remaining=4",
    "take cost 10: allowed=false blockedBy=burst retryAfterMs=Infinity",
    "peek: remaining=4",
    "wait: WAIT_TIMEOUT",
    "wait aborted: shutting down",
    "run: holding lease, expires after now: true",
    "run: done",
    "error: INVALID_ARGUMENT retryable=false",
  ]);
});
