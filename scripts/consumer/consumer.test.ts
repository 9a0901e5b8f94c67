// The published packages as a user gets them: `npm pack` every package (from the build, so
// `npm run build` must have run: `npm test` does), install the tarballs into a scratch project
// outside the workspace together with typescript, ioredis, pg and the HTTP frameworks from the
// registry, then run an ESM and a CJS consumer of every entry point and compile a TypeScript
// consumer under node16, nodenext, bundler and node10 resolution with no compiler flag or @types
// package beyond what the package READMEs say. Never skipped: without the registry it fails.
import { execFile } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const appSources = fileURLToPath(new URL("./app", import.meta.url));
const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const httpPkg = JSON.parse(readFileSync(join(root, "packages/http/package.json"), "utf8"));

interface Entry {
  /** Import specifier, e.g. `@sluice/core/testing`. */
  spec: string;
  pkg: string;
}

const packages = (rootPkg.workspaces as string[])
  .map((ws) => ({
    dir: join(root, ws),
    pkg: JSON.parse(readFileSync(join(root, ws, "package.json"), "utf8")),
  }))
  .filter((p) => !p.pkg.private);

/** Every code entry point of every package, read from its `exports` map. */
const entries: Entry[] = packages.flatMap(({ pkg }) =>
  Object.keys(pkg.exports as Record<string, unknown>)
    .filter((sub) => !sub.endsWith(".json"))
    .map((sub) => ({
      spec: sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`,
      pkg: pkg.name,
    })),
);

/**
 * A remote store whose clock runs a minute ahead of the process's, built on `@sluice/core/store`
 * as a store package is: its first answer is a deadline refusal, which the limiter (from
 * `@sluice/core`) must recognise to learn the store's clock and decide at once. Prints whether
 * the take was admitted, how many store errors the limiter reported, and whether the refusal is a
 * `SluiceError` of the user's entry. `mod` loads a module (import() or require()).
 */
const SKEWED_STORE = (mod: string) =>
  [
    `const { createLimiter: createSkewed, SluiceError } = ${mod}("@sluice/core");`,
    `const { DeadlinePassedError } = ${mod}("@sluice/core/store");`,
    `const { memoryStore: skewedMemory } = ${mod}("@sluice/store-memory");`,
    "const skewMs = 60_000;",
    "const inner = skewedMemory({ clock: () => Date.now() + skewMs });",
    "const skewed = createSkewed({",
    '  store: { capabilities: { name: "remote", clock: "server", local: false, requiresPartition: false },',
    "    execute: async (request) => {",
    "      const now = Date.now() + skewMs;",
    '      if (request.deadlineMs !== undefined && now > request.deadlineMs) throw new DeadlinePassedError("remote", now, request.deadlineMs);',
    "      return inner.execute(request);",
    "    } },",
    '  policies: [{ kind: "tokenBucket", name: "b", capacity: 10, refill: { tokens: 10, every: "1s" } }],',
    "  timeoutMs: 300,",
    "});",
    "let storeErrors = 0;",
    'skewed.on("storeError", () => storeErrors++);',
  ].join("\n");
/** What SKEWED_STORE's take must print: admitted, no store error, the refusal a SluiceError. */
const SKEWED_EXPECTED = { allowed: true, storeErrors: 0, refusalIsSluiceError: true };
const SKEWED_RESULT =
  'skewed: { allowed: (await skewed.take("k")).allowed, storeErrors, refusalIsSluiceError: new DeadlinePassedError("remote", 1, 0) instanceof SluiceError }';

/** Fails a consumer script when an entry point exports nothing. */
const NONEMPTY =
  'for (const [spec, ns] of Object.entries(all)) if (Object.keys(ns).length === 0) throw new Error(spec + ": no exports");';

/**
 * Entry points that cannot be loaded with require() (vitest, which the suite registers tests
 * with, is ESM only), and so are left out of the CJS consumer and of node10 resolution, whose
 * users are CommonJS ones: their types use vitest's and fast-check's, which resolve only through
 * `exports` (packages/core/README.md says so).
 */
const ESM_ONLY = new Set(["@sluice/core/testing"]);
/**
 * Under node10 resolution, Fastify's own types (pino's default import of thread-stream) compile
 * only with esModuleInterop, as packages/http/README.md says: this subpath and fastify.ts compile
 * with it there, everything else without.
 */
const NODE10_INTEROP = new Set(["@sluice/http/fastify"]);

let dir = "";
let app = "";
/** The four compilations, started together at the end of beforeAll (each takes several seconds). */
const compiled = new Map<string, Promise<string>>();

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, encoding: "utf8", maxBuffer: 2 ** 26 });
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(" ")} failed in ${cwd}\n${err.stdout ?? ""}${err.stderr ?? err.message}`,
    );
  }
}

beforeAll(async () => {
  for (const { dir: pkgDir, pkg } of packages) {
    if (!existsSync(join(pkgDir, "dist")))
      throw new Error(`${pkg.name} is not built: run npm run build`);
  }
  dir = mkdtempSync(join(tmpdir(), "sluice-consumer-"));
  const tarballs = join(dir, "tarballs");
  app = join(dir, "app");
  mkdirSync(tarballs);
  mkdirSync(app);
  const packed = JSON.parse(
    await sh(
      "npm",
      [
        "pack",
        "--json",
        "--ignore-scripts",
        "--pack-destination",
        tarballs,
        ...packages.flatMap((p) => ["--workspace", p.pkg.name]),
      ],
      root,
    ).then((out) => out.slice(out.indexOf("["))),
  ) as { name: string; filename: string }[];
  const dependencies: Record<string, string> = {
    typescript: rootPkg.devDependencies.typescript,
    ioredis: rootPkg.devDependencies.ioredis,
    pg: rootPkg.devDependencies.pg,
    // The conformance suite at @sluice/core/testing needs its optional peers, as its README says.
    vitest: rootPkg.devDependencies.vitest,
    "fast-check": rootPkg.devDependencies["fast-check"],
    // @sluice/http's optional peers, each for its subpath, and the types packages/http/README.md
    // tells TypeScript users to add (Express ships none; node:http's come from @types/node).
    express: httpPkg.devDependencies.express,
    "@types/express": httpPkg.devDependencies["@types/express"],
    fastify: httpPkg.devDependencies.fastify,
    hono: httpPkg.devDependencies.hono,
    "@types/node": rootPkg.devDependencies["@types/node"],
  };
  for (const p of packed) dependencies[p.name] = `file:${join(tarballs, p.filename)}`;
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "sluice-consumer", private: true, type: "module", dependencies }, null, 2)}\n`,
  );
  await sh(
    "npm",
    [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--loglevel=error",
    ],
    app,
  );

  copyFileSync(join(appSources, "usage.ts"), join(app, "usage.ts"));
  copyFileSync(join(appSources, "fastify.ts"), join(app, "fastify.ts"));
  // Every entry point imported in a TypeScript file, so node10 proves typesVersions for each
  // subpath (in files of their own for node10: the ESM-only ones aside, and those it compiles
  // with esModuleInterop).
  const entriesTs = (list: Entry[]) =>
    list.map((e, i) => `import * as entry${i} from "${e.spec}";\nexport { entry${i} };\n`).join("");
  writeFileSync(join(app, "entries.ts"), entriesTs(entries));
  writeFileSync(
    join(app, "entries-node10.ts"),
    entriesTs(entries.filter((e) => !ESM_ONLY.has(e.spec) && !NODE10_INTEROP.has(e.spec))),
  );
  writeFileSync(
    join(app, "entries-node10-interop.ts"),
    entriesTs(entries.filter((e) => NODE10_INTEROP.has(e.spec))),
  );
  writeFileSync(join(app, "usage.cts"), readFileSync(join(appSources, "usage.ts"), "utf8"));
  writeFileSync(
    join(app, "esm.mjs"),
    [
      ...entries.map((e, i) => `import * as entry${i} from "${e.spec}";`),
      `const all = { ${entries.map((e, i) => `"${e.spec}": entry${i}`).join(", ")} };`,
      NONEMPTY,
      "const { createLimiter, isSluiceError } = entry0;",
      'const { memoryStore } = await import("@sluice/store-memory");',
      'const limiter = createLimiter({ store: memoryStore(), policies: [{ kind: "fixedWindow", name: "w", limit: 1, window: "1m", align: "firstUse" }] });',
      'const a = await limiter.take("k"); const b = await limiter.take("k");',
      "// An error from the CJS build, recognised by the ESM build's isSluiceError.",
      'let cjsError; try { (await import("node:module")).createRequire(import.meta.url)("@sluice/core").createLimiter({ store: memoryStore(), policies: [{ kind: "nope" }] }); } catch (e) { cjsError = e; }',
      SKEWED_STORE("await import"),
      `console.log(JSON.stringify({ entries: Object.keys(all).length, first: a.allowed, second: b.allowed, crossBuildError: isSluiceError(cjsError), ${SKEWED_RESULT} }));`,
      "skewed.close();",
    ].join("\n"),
  );
  writeFileSync(
    join(app, "cjs.cjs"),
    [
      `const all = { ${entries
        .filter((e) => !ESM_ONLY.has(e.spec))
        .map((e) => `"${e.spec}": require("${e.spec}")`)
        .join(", ")} };`,
      NONEMPTY,
      'const { createLimiter } = require("@sluice/core");',
      'const { memoryStore } = require("@sluice/store-memory");',
      'const limiter = createLimiter({ store: memoryStore(), policies: [{ kind: "fixedWindow", name: "w", limit: 1, window: "1m", align: "firstUse" }] });',
      SKEWED_STORE("require"),
      '(async () => { const a = await limiter.take("k"); const b = await limiter.take("k");',
      `console.log(JSON.stringify({ entries: Object.keys(all).length, first: a.allowed, second: b.allowed, ${SKEWED_RESULT} })); skewed.close(); })();`,
    ].join("\n"),
  );
  const base = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    target: "ES2022",
    lib: ["ES2023"],
  };
  const configs: Record<string, object> = {
    node16: { ...base, module: "node16", moduleResolution: "node16" },
    nodenext: { ...base, module: "nodenext", moduleResolution: "nodenext" },
    bundler: { ...base, module: "esnext", moduleResolution: "bundler" },
    node10: { ...base, module: "commonjs", moduleResolution: "node10" },
    "node10-interop": {
      ...base,
      module: "commonjs",
      moduleResolution: "node10",
      esModuleInterop: true,
    },
  };
  const filesOf: Record<string, string[]> = {
    node16: ["usage.ts", "usage.cts", "fastify.ts", "entries.ts"],
    nodenext: ["usage.ts", "usage.cts", "fastify.ts", "entries.ts"],
    bundler: ["usage.ts", "fastify.ts", "entries.ts"],
    node10: ["usage.ts", "entries-node10.ts"],
    "node10-interop": ["fastify.ts", "entries-node10-interop.ts"],
  };
  for (const [name, compilerOptions] of Object.entries(configs)) {
    const files = filesOf[name]!;
    writeFileSync(
      join(app, `tsconfig.${name}.json`),
      JSON.stringify({ compilerOptions, files }, null, 2),
    );
  }
  const tsc = join(app, "node_modules/typescript/bin/tsc");
  for (const name of Object.keys(configs)) {
    const compilation = sh(process.execPath, [tsc, "-p", `tsconfig.${name}.json`], app);
    compilation.catch(() => {}); // awaited, and reported, by its own test
    compiled.set(name, compilation);
  }
}, 180_000);

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("the packed packages, installed from their tarballs", () => {
  it("ship a LICENSE and their README in every tarball", () => {
    for (const { pkg } of packages) {
      const installed = join(app, "node_modules", pkg.name);
      expect(existsSync(join(installed, "LICENSE")), `${pkg.name} LICENSE`).toBe(true);
      expect(existsSync(join(installed, "README.md")), `${pkg.name} README.md`).toBe(true);
    }
  });

  it("load every entry point from an ES module and decide", async () => {
    const out = JSON.parse(await sh(process.execPath, ["esm.mjs"], app));
    expect(out).toEqual({
      entries: entries.length,
      first: true,
      second: false,
      crossBuildError: true,
      skewed: SKEWED_EXPECTED,
    });
  });

  it("load every entry point from CommonJS and decide", async () => {
    const out = JSON.parse(await sh(process.execPath, ["cjs.cjs"], app));
    expect(out).toEqual({
      entries: entries.filter((e) => !ESM_ONLY.has(e.spec)).length,
      first: true,
      second: false,
      // One copy of each class across the entry points: the store entry's deadline refusal is
      // the limiter's (a CommonJS build per entry point made it a store failure).
      skewed: SKEWED_EXPECTED,
    });
  });

  for (const resolution of ["node16", "nodenext", "bundler", "node10"]) {
    it(`type-check for a TypeScript consumer with moduleResolution ${resolution}`, async () => {
      await compiled.get(resolution);
      if (resolution === "node10") await compiled.get("node10-interop");
      // Five compilations run at once: on a machine busy with another run they take minutes.
    }, 300_000);
  }
});
