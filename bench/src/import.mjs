// Import cost: a cold `require` and `import` of @sluice/core (the build in packages/core/dist)
// beside rate-limiter-flexible's, each in a fresh node process, alternated round by round so load
// on the machine hits both alike; the figure is the median over the rounds. Also the published
// size of every @sluice package (npm pack --dry-run) beside rate-limiter-flexible's.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROUNDS = Number(process.env.IMPORT_ROUNDS ?? 21);
const benchDir = fileURLToPath(new URL("..", import.meta.url));
const root = join(benchDir, "..");
const require = createRequire(import.meta.url);

const TARGETS = [
  { name: "@sluice/core", spec: "@sluice/core" },
  { name: "@sluice/core + @sluice/store-memory", spec: ["@sluice/core", "@sluice/store-memory"] },
  { name: "rate-limiter-flexible", spec: "rate-limiter-flexible" },
];

/** Time spent in the require/import itself, measured inside a fresh process. */
function once(spec, mode) {
  const specs = JSON.stringify([spec].flat());
  const body =
    mode === "require"
      ? `const t=performance.now();for(const s of ${specs})require(s);process.stdout.write(String(performance.now()-t))`
      : `const t=performance.now();for(const s of ${specs})await import(s);process.stdout.write(String(performance.now()-t))`;
  const args = mode === "require" ? ["-e", body] : ["--input-type=module", "-e", body];
  return Number(execFileSync(process.execPath, args, { cwd: benchDir, encoding: "utf8" }));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function packed(dir) {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  const [info] = JSON.parse(out);
  return { size: info.size, unpackedSize: info.unpackedSize, files: info.entryCount };
}

/** Bytes on disk of a package's runtime dependencies, as installed here. */
function dependencyBytes(pkgDir) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  let total = 0;
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    const depDir = dirname(require.resolve(`${dep}/package.json`, { paths: [pkgDir] }));
    total += packed(depDir).unpackedSize;
  }
  return total;
}

export async function run() {
  const times = new Map(
    TARGETS.flatMap((t) => ["require", "import"].map((m) => [`${t.name}|${m}`, []])),
  );
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of ["require", "import"]) {
      for (const t of i % 2 === 0 ? TARGETS : [...TARGETS].reverse()) {
        times.get(`${t.name}|${mode}`).push(once(t.spec, mode));
      }
    }
  }
  const ms = (name, mode) => Math.round(median(times.get(`${name}|${mode}`)) * 10) / 10;
  const rows = [];
  for (const t of TARGETS) {
    for (const mode of ["require", "import"])
      rows.push({ name: `${mode} ${t.name}`, ms: ms(t.name, mode) });
  }
  const ratio = (mode) =>
    Math.round((ms("@sluice/core", mode) / ms("rate-limiter-flexible", mode)) * 100) / 100;

  const sizes = [];
  for (const dir of readdirSync(join(root, "packages")).sort()) {
    const pkgDir = join(root, "packages", dir);
    const { name } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    sizes.push({ name, ...packed(pkgDir), dependencyBytes: dependencyBytes(pkgDir) });
  }
  const rlfDir = dirname(require.resolve("rate-limiter-flexible/package.json"));
  const rlfVersion = JSON.parse(readFileSync(join(rlfDir, "package.json"), "utf8")).version;
  sizes.push({
    name: `rate-limiter-flexible@${rlfVersion}`,
    ...packed(rlfDir),
    dependencyBytes: dependencyBytes(rlfDir),
  });

  return {
    suite: "import",
    rows,
    ratios: [
      { name: "require @sluice/core / rate-limiter-flexible", value: ratio("require"), max: 2 },
      { name: "import @sluice/core / rate-limiter-flexible", value: ratio("import"), max: 2 },
    ],
    sizes,
    notes: [
      `median of ${ROUNDS} fresh processes per row, alternated; time inside the process from before the first require/import to after the last`,
    ],
  };
}
