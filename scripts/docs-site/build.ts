// `npm run docs:build`: the docs site (VitePress) from docs/, with three generated parts, all
// gitignored: the API reference (TypeDoc, markdown) in docs/api, the benchmark results page with
// its charts from bench/results/*.json, and docs/examples copied as plain files. Output:
// docs/.vitepress/dist. `--no-site` stops before VitePress (used by the docs-coverage check).
import { execFileSync, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderBarChart } from "../charts.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const docs = join(root, "docs");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

/** Every public entry point's source file, read from each package's `exports`. */
export function entryPoints(): { spec: string; file: string }[] {
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const out: { spec: string; file: string }[] = [];
  for (const ws of workspaces as string[]) {
    const pkg = JSON.parse(readFileSync(join(root, ws, "package.json"), "utf8"));
    if (pkg.private) continue;
    for (const sub of Object.keys(pkg.exports)) {
      if (sub.endsWith(".json")) continue;
      const rel = sub === "." ? "" : `${sub.slice(2)}`;
      const candidates = rel === "" ? ["src/index.ts"] : [`src/${rel}/index.ts`, `src/${rel}.ts`];
      const file = candidates.map((c) => join(root, ws, c)).find((c) => existsSync(c));
      if (file === undefined) throw new Error(`no source for ${pkg.name}${rel ? `/${rel}` : ""}`);
      out.push({ spec: rel === "" ? pkg.name : `${pkg.name}/${rel}`, file });
    }
  }
  return out;
}

/** Runs TypeDoc into docs/api; returns its output (warnings included). */
export function apiReference(extra: string[] = [], tolerateFailure = false): string {
  rmSync(join(docs, "api"), { recursive: true, force: true });
  const args = [
    "--options",
    join(root, "scripts/docs-site/typedoc.json"),
    ...entryPoints().flatMap((e) => ["--entryPoints", e.file]),
    ...extra,
  ];
  const r = spawnSync(bin("typedoc"), args, { cwd: root, encoding: "utf8" });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 && !tolerateFailure) throw new Error(`typedoc failed\n${out}`);
  fixAnchors(join(docs, "api"));
  return out;
}

const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[`*_()\\]/g, "")
    .trim()
    .replace(/[^\w]+/g, "-");

/**
 * The markdown plugin numbers an anchor (`#sluiceerrorcode-1`) when a name also appears as a
 * member elsewhere on the page, but the page has one such heading: point those links at it.
 */
function fixAnchors(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      fixAnchors(path);
      continue;
    }
    if (!name.endsWith(".md")) continue;
    const text = readFileSync(path, "utf8");
    const ids = new Set([...text.matchAll(/^#+\s+(.+)$/gm)].map((m) => slug(m[1]!)));
    const fixed = text.replace(/\(#([\w-]+)-(\d+)\)/g, (all, id: string, n: string) =>
      !ids.has(`${id}-${n}`) && ids.has(id) ? `(#${id})` : all,
    );
    if (fixed !== text) writeFileSync(path, fixed);
  }
}

interface Row {
  name: string;
  opsPerSec?: number;
  ms?: number;
}
interface SuiteResult {
  suite: string;
  rows?: Row[];
  ratios?: { name: string; value: number; target?: number; max?: number }[];
  sizes?: {
    name: string;
    size: number;
    unpackedSize: number;
    files: number;
    dependencyBytes: number;
  }[];
  notes?: string[];
  error?: string;
}
interface Run {
  date: string;
  machine: { node: string; platform: string; cpus: number; cpuModel: string; memoryGb: number };
  results: SuiteResult[];
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} kB`;

/** docs/benchmark-results.md and its charts, from bench/results/latest.json and import.json. */
export function benchmarkPage(): void {
  const dir = join(root, "bench/results");
  const runs = ["import.json", "latest.json"]
    .filter((f) => existsSync(join(dir, f)))
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Run);
  const charts = join(docs, "public/bench");
  mkdirSync(charts, { recursive: true });
  const md: string[] = [
    "# Latest benchmark results",
    "",
    "Generated from `bench/results/*.json` by `npm run docs:build`; how each suite measures is in",
    "[Benchmarks](./benchmarks.md). Figures come from a shared virtual machine and move by about",
    "20% from run to run; ratios measured in one run are the meaningful part.",
    "",
  ];
  for (const run of runs) {
    const m = run.machine;
    for (const r of run.results) {
      md.push(`## ${r.suite}`, "");
      md.push(
        `Run of ${run.date.slice(0, 16).replace("T", " ")} UTC, Node ${m.node}, ${m.cpus} x ${m.cpuModel}.`,
        "",
      );
      if (r.error !== undefined) {
        md.push(`Skipped in that run: ${r.error}`, "");
        continue;
      }
      const rows = r.rows ?? [];
      const timed = rows.some((row) => row.ms !== undefined);
      md.push(timed ? "| row | ms |" : "| row | ops/s |", "| --- | ---: |");
      for (const row of rows) {
        md.push(
          `| ${row.name} | ${timed ? row.ms : Math.round(row.opsPerSec ?? 0).toLocaleString("en")} |`,
        );
      }
      md.push("");
      const file = `${r.suite}.svg`;
      writeFileSync(
        join(charts, file),
        renderBarChart(
          timed ? `${r.suite}: time to load (lower is better)` : `${r.suite}: decisions per second`,
          timed ? "ms" : "ops/s",
          rows.map((row) => ({
            name: row.name,
            value: timed ? (row.ms ?? 0) : Math.round(row.opsPerSec ?? 0),
            highlight: row.name.includes("sluice"),
          })),
        ),
      );
      md.push(`![${r.suite} results](/bench/${file})`, "");
      if ((r.ratios ?? []).length > 0) {
        md.push("| ratio | value | target |", "| --- | ---: | --- |");
        for (const q of r.ratios ?? []) {
          const target =
            q.max !== undefined ? `<= ${q.max}` : q.target !== undefined ? `>= ${q.target}` : "";
          md.push(`| ${q.name} | ${q.value}x | ${target} |`);
        }
        md.push("");
      }
      if ((r.sizes ?? []).length > 0) {
        md.push(
          "| package | packed | unpacked | files | dependencies (unpacked) |",
          "| --- | ---: | ---: | ---: | ---: |",
        );
        for (const s of r.sizes ?? []) {
          md.push(
            `| ${s.name} | ${kb(s.size)} | ${kb(s.unpackedSize)} | ${s.files} | ${kb(s.dependencyBytes)} |`,
          );
        }
        md.push("");
      }
      for (const note of r.notes ?? []) md.push(`- ${note.replace(/\|/g, "\\|")}`);
      md.push("");
    }
  }
  writeFileSync(join(docs, "benchmark-results.md"), `${md.join("\n")}\n`);
}

function copyExamples(): void {
  const to = join(docs, "public/examples");
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(join(docs, "examples"))) {
    if (!f.endsWith(".test.ts")) cpSync(join(docs, "examples", f), join(to, f));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  copyExamples();
  benchmarkPage();
  apiReference();
  if (!process.argv.includes("--no-site")) {
    execFileSync(bin("vitepress"), ["build", "docs"], { cwd: root, stdio: "inherit" });
  }
}
