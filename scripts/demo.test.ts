import { describe, expect, it } from "vitest";
import { runDemo } from "./demo.js";

describe("npm start demo", () => {
  it("imports every contact through keap.fetch and reports what happened", async () => {
    let text = "";
    const summary = await runDemo({
      contacts: 10,
      profile: "pat",
      workers: 4,
      out: { write: (t: string) => (text += t), isTTY: false },
    });
    expect(summary).toMatchObject({
      imported: 10,
      sent: 10,
      throttled: 0,
      reachedCaller: 0,
      failed: 0,
      limitRate: 4,
    });
    expect(summary.quotaLeft).toBe(30_000 - 10);
    // 5/s paced 10% below, plus one interval for the cold first request: about 2.4 s.
    expect(summary.seconds).toBeGreaterThan(2);
    expect(text).toContain("[##############################] 10/10");
    expect(text).toContain("Imported 10 of 10 contacts");
    expect(text).toContain(
      "Requests sent: 10; 429s received: 0 (retried by keap.fetch; reached the import: 0); failed: 0.",
    );
  }, 30_000);
});
