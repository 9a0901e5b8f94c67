// Package hygiene for every published workspace: publint --strict and attw --pack, plus what a
// registry page needs: the LICENSE in the tarball, complete metadata, README links that resolve
// outside the repository.
// Runs on the build output, so `npm run build` must have run first (npm test does).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const bin = (name) => join(root, "node_modules", ".bin", name);
const license = readFileSync(join(root, "LICENSE"), "utf8");
let failed = 0;

/** Problems a registry page would show: missing metadata, no LICENSE, links into the repository. */
function metadataProblems(dir, pkg) {
  const problems = [];
  for (const field of ["description", "keywords", "homepage", "bugs", "repository", "license"]) {
    if (pkg[field] === undefined) problems.push(`package.json lacks "${field}"`);
  }
  if (pkg.repository?.directory !== dir.slice(root.length).replace(/^\/|\/$/g, "")) {
    problems.push(`repository.directory should be "${dir.slice(root.length)}"`);
  }
  if (!pkg.files?.includes("LICENSE")) problems.push('"files" lacks "LICENSE"');
  const own = join(dir, "LICENSE");
  if (!existsSync(own) || readFileSync(own, "utf8") !== license) {
    problems.push("LICENSE missing or not the same as the repository's");
  }
  const readme = readFileSync(join(dir, "README.md"), "utf8");
  for (const m of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1];
    if (!/^(https?:|mailto:|#)/.test(target)) {
      problems.push(`README link "${target}" does not resolve on the registry's page`);
    }
  }
  return problems;
}

for (const ws of workspaces) {
  const dir = join(root, ws);
  const pkgFile = join(dir, "package.json");
  if (!existsSync(pkgFile)) continue;
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
  if (pkg.private) continue;
  const problems = metadataProblems(dir, pkg);
  if (problems.length === 0) console.log(`ok   ${"meta".padEnd(7)} ${pkg.name}`);
  else {
    failed++;
    console.log(`FAIL ${"meta".padEnd(7)} ${pkg.name}\n  ${problems.join("\n  ")}`);
  }
  for (const [tool, args] of [
    ["publint", ["--strict"]],
    ["attw", ["--pack", ".", "--format", "table-flipped"]],
  ]) {
    try {
      execFileSync(bin(tool), args, { cwd: dir, stdio: "pipe", encoding: "utf8" });
      console.log(`ok   ${tool.padEnd(7)} ${pkg.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${tool.padEnd(7)} ${pkg.name}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
  }
}
if (failed > 0) {
  console.log(`${failed} package check(s) failed`);
  process.exit(1);
}
