// `npm run release:check`: `npm publish --dry-run` for every published package, from the build
// (run `npm run build` first). Fails on any error or warning npm prints, and when the @sluice
// packages do not all carry the same version (.changeset/config.json versions them together).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
let failed = 0;
const versions = new Set();

for (const ws of workspaces) {
  const pkg = JSON.parse(readFileSync(join(root, ws, "package.json"), "utf8"));
  if (pkg.private) continue;
  versions.add(pkg.version);
  const r = spawnSync(
    "npm",
    ["publish", "--dry-run", "--ignore-scripts", "--workspace", pkg.name],
    { cwd: root, encoding: "utf8" },
  );
  // Without credentials npm says a real publish would need a login; anything else is a finding
  // (an auto-corrected package.json, a missing file, a refused name).
  const warnings = `${r.stdout}\n${r.stderr}`
    .split("\n")
    .filter((l) => /^npm (warn|error|ERR)/i.test(l) && !/requires you to be logged in/.test(l));
  if (r.status !== 0 || warnings.length > 0) {
    failed++;
    console.log(`FAIL ${pkg.name}@${pkg.version}\n${warnings.join("\n") || r.stderr}`);
  } else console.log(`ok   ${pkg.name}@${pkg.version}`);
}
if (versions.size !== 1) {
  failed++;
  console.log(`FAIL versions differ: ${[...versions].join(", ")}`);
}
if (failed > 0) process.exit(1);
