import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDemoArgs, runDemo } from "./demo.js";

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
    });
    // 10 requests in ~2.4 s are bound by the 5/s spike, not yet by the 240/minute throttle; the
    // summary compares against what the policies admit over the run, so never above 100%.
    expect(summary.limitRate).toBeGreaterThan(4);
    expect(summary.limitRate).toBeLessThan(6);
    expect(summary.rate / summary.limitRate).toBeLessThanOrEqual(1);
    expect(summary.quotaLeft).toBe(30_000 - 10);
    // 5/s paced 10% below, plus one interval for the cold first request: about 2.4 s.
    expect(summary.seconds).toBeGreaterThan(2);
    expect(text).toContain("[##############################] 10/10");
    expect(text).toContain("Imported 10 of 10 contacts");
    expect(text).toContain(
      "Requests sent: 10; 429s received: 0 (retried by keap.fetch; reached the import: 0); failed: 0.",
    );
  }, 30_000);

  it("prints usage for --help and refuses an unknown profile, naming the valid ones", () => {
    expect(parseDemoArgs(["--help"])).toEqual({ help: true });
    expect(parseDemoArgs(["--profile", "sak"])).toEqual({
      error: 'unknown --profile "sak": use oauth or pat',
    });
    expect(parseDemoArgs(["--profle", "pat"])).toHaveProperty("error");
    expect(parseDemoArgs(["--profile", "pat", "--contacts", "5"])).toEqual({
      profile: "pat",
      contacts: 5,
      workers: 8,
    });
  });

  it("exits non-zero on an unknown profile and zero on --help", () => {
    const tsx = ["--import", "tsx", fileURLToPath(new URL("./demo.ts", import.meta.url))];
    const bad = spawnSync(process.execPath, [...tsx, "--profile", "nope"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown --profile "nope": use oauth or pat');
    const help = spawnSync(process.execPath, [...tsx, "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Usage: npm start --");
  }, 30_000);
});
