// Runs every snippet of docs/migrating-from-rate-limiter-flexible.md that is followed by an output
// block, before (rate-limiter-flexible) and after (sluice, the built packages), and compares what
// it prints with the page. The other snippets are type-checked by scripts/docs-site/blocks.test.ts.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const page = "docs/migrating-from-rate-limiter-flexible.md";
const dir = join(root, ".tmp", `migrating-${process.pid}`);

interface Snippet {
  line: number;
  code: string;
  output: string;
}

function snippets(): Snippet[] {
  const text = readFileSync(join(root, page), "utf8");
  const re = /```ts\n([\s\S]*?)```\s*\n```text\n([\s\S]*?)```/g;
  return [...text.matchAll(re)].map((m) => ({
    line: text.slice(0, m.index).split("\n").length + 1,
    code: m[1]!,
    output: m[2]!.trim(),
  }));
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(page, () => {
  const all = snippets();
  it("has a before and an after for each example", () => {
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(all.filter((s) => s.code.includes("rate-limiter-flexible")).length).toBe(all.length / 2);
  });

  for (const s of all) {
    const side = s.code.includes("rate-limiter-flexible") ? "before" : "after";
    it(`prints what the page says (${side}, line ${s.line})`, async () => {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `snippet-${s.line}.mts`);
      writeFileSync(file, s.code);
      const { stdout } = await run(process.execPath, ["--import", "tsx", file], { cwd: root });
      expect(stdout.trim()).toBe(s.output);
    }, 30_000);
  }
});
