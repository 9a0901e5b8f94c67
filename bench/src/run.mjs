// `npm run bench`: every suite present in this folder, one after another in one run, printed as a
// table with each peer's ratio to sluice, and written to bench/results/<date>.json and latest.json.
// `node src/run.mjs memory` runs only the suites named.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

const SUITES = ["import", "memory", "redis", "postgres"];
const only = process.argv.slice(2);
const results = [];
const NAME_WIDTH = 66;

const machine = {
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
  memoryGb: Math.round(totalmem() / 2 ** 30),
};
console.log(
  `Node ${machine.node}, ${machine.platform}, ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGb} GB`,
);

function print(r) {
  for (const row of r.rows) {
    const figure =
      row.ms === undefined
        ? `${row.opsPerSec.toLocaleString("en").padStart(12)} ops/s`
        : `${row.ms.toFixed(1).padStart(12)} ms`;
    console.log(`${row.name.padEnd(NAME_WIDTH)} ${figure}`);
  }
  for (const ratio of r.ratios) {
    if (ratio.max !== undefined) {
      const verdict = ratio.value <= ratio.max ? " (met)" : " (missed)";
      console.log(
        `${ratio.name.padEnd(NAME_WIDTH)} ${ratio.value.toFixed(2).padStart(12)} x   target <= ${ratio.max}${verdict}`,
      );
      continue;
    }
    const target = ratio.target === undefined ? "" : `   target >= ${ratio.target}`;
    const verdict =
      ratio.target === undefined ? "" : ratio.value >= ratio.target ? " (met)" : " (missed)";
    console.log(
      `${ratio.name.padEnd(NAME_WIDTH)} ${ratio.value.toFixed(2).padStart(12)} x${target}${verdict}`,
    );
  }
  const bytes = r.extra?.bytesPerLiveKey;
  if (bytes !== undefined) {
    const target = r.extra.bytesTarget;
    const verdict = target === undefined ? "" : bytes <= target ? " (met)" : " (missed)";
    console.log(
      `${"bytes per live key, 1 policy".padEnd(NAME_WIDTH)} ${String(bytes).padStart(12)} B${target === undefined ? "" : `   target <= ${target}`}${verdict}`,
    );
  }
  for (const s of r.sizes ?? []) {
    const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
    console.log(
      `${`size ${s.name}`.padEnd(NAME_WIDTH)} ${kb(s.size).padStart(12)} packed, ${kb(s.unpackedSize)} unpacked, ${s.files} files, dependencies ${kb(s.dependencyBytes)}`,
    );
  }
  for (const note of r.notes ?? []) console.log(`  - ${note}`);
}

for (const name of SUITES) {
  if (only.length > 0 && !only.includes(name)) continue;
  if (!existsSync(new URL(`./${name}.mjs`, import.meta.url))) continue;
  console.log(`\n== ${name} ==`);
  try {
    const suite = await import(`./${name}.mjs`);
    const r = await suite.run();
    results.push(r);
    print(r);
  } catch (error) {
    // A server that is down is reported, not fatal: the other suites still run.
    const message = error instanceof Error ? error.message : String(error);
    console.log(`skipped: ${message}`);
    results.push({ suite: name, error: message });
  }
}

const report = { date: new Date().toISOString(), machine, results };
const dir = new URL("../results/", import.meta.url);
mkdirSync(dir, { recursive: true });
const stamp = report.date.slice(0, 19).replace(/[:T]/g, "-");
const json = `${JSON.stringify(report, null, 2)}\n`;
writeFileSync(new URL(`${stamp}.json`, dir), json);
writeFileSync(new URL("latest.json", dir), json);
// The import suite also keeps its latest figures apart, for docs/benchmarks.md.
const imports = results.find((r) => r.suite === "import" && r.error === undefined);
if (imports !== undefined) {
  const own = { date: report.date, machine, results: [imports] };
  writeFileSync(new URL("import.json", dir), `${JSON.stringify(own, null, 2)}\n`);
}
console.log(`\nwritten to bench/results/${stamp}.json and bench/results/latest.json`);
// Suites may leave client sockets or timers behind; the run is over.
process.exit(0);
