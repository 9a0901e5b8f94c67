// The checked-in API reports (packages/*/api/*.api.md) match the built packages: a change to a
// public surface must come with its regenerated report, so that it shows in review. Regenerates
// every report into a scratch directory and compares. `npm run build` must have run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { apiReports, writeReports } from "./api-report.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "sluice-api-report-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The first lines where two texts differ, with line numbers, for the failure message. */
function firstDifference(want: string, got: string): string {
  const a = want.split("\n");
  const b = got.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `line ${i + 1}:\n  checked in: ${a[i] ?? "(end of file)"}\n  from build: ${b[i] ?? "(end of file)"}`;
    }
  }
  return "";
}

it("every package's checked-in API report matches its build", { timeout: 120_000 }, () => {
  const reports = apiReports();
  writeReports(reports, scratch);
  const stale: string[] = [];
  for (const r of reports) {
    const fresh = readFileSync(join(scratch, r.file), "utf8");
    const checkedIn = join(root, r.file);
    if (!existsSync(checkedIn)) stale.push(`${r.file}: missing`);
    else {
      const old = readFileSync(checkedIn, "utf8");
      if (old !== fresh) stale.push(`${r.file} differs, ${firstDifference(old, fresh)}`);
    }
  }
  expect(
    stale,
    `The public API changed. Run \`npm run build && npm run api:report\`, review the diff of packages/*/api/*.api.md and commit it.\n${stale.join("\n")}`,
  ).toEqual([]);
});
