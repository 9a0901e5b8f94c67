// Package hygiene for every published workspace: publint --strict and attw --pack.
// Runs on the build output, so `npm run build` must have run first (npm test does).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const bin = (name) => join(root, "node_modules", ".bin", name);
let failed = 0;

for (const ws of workspaces) {
  const dir = join(root, ws);
  const pkgFile = join(dir, "package.json");
  if (!existsSync(pkgFile)) continue;
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
  if (pkg.private) continue;
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
