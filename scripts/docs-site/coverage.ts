// `npm run docs:coverage`: every exported symbol of every public entry point has a doc comment.
// TypeDoc's own check (validation.notDocumented), one entry point at a time (with several at once
// TypeDoc 0.28 reports nothing); lists what lacks a comment and fails while anything does. Not
// part of `npm test` yet: see the list it prints.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { entryPoints } from "./build.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "sluice-typedoc-"));
const missing: string[] = [];
for (const e of entryPoints()) {
  const r = spawnSync(
    join(root, "node_modules/.bin/typedoc"),
    [
      "--options",
      join(root, "scripts/docs-site/typedoc.json"),
      "--entryPoints",
      e.file,
      "--out",
      out,
      "--validation.notDocumented",
      "true",
    ],
    { cwd: root, encoding: "utf8" },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes of the log
  const log = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, "");
  for (const m of log.matchAll(
    /\[warning\] (.+?), defined in (.+?), does not have any documentation/g,
  )) {
    missing.push(`${e.spec}: ${m[1]}  (${m[2]})`);
  }
}
rmSync(out, { recursive: true, force: true });
for (const line of missing) console.log(line);
console.log(`${missing.length} exported symbol(s) without documentation`);
if (missing.length > 0) process.exitCode = 1;
