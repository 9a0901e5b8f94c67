// `npm run api:report`: the public surface of every published package, from its built .d.ts, in
// packages/<pkg>/api/<pkg>.api.md, checked in so that a change to the surface shows in review
// (scripts/api-report.test.ts fails while a report is out of date). For each entry point: every
// export with its declaration, doc comments left out; then the declarations the exports refer to
// that the package does not export (their shape is public all the same).
//
// Built on the TypeScript compiler API rather than API Extractor: API Extractor takes one entry
// point per run and several seconds each, and these packages have 13 entry points; one program
// over all the .d.ts files answers in a few seconds.
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface PackageReport {
  name: string;
  /** Where the report lives, relative to the repository root. */
  file: string;
  text: string;
}

interface Entry {
  spec: string;
  dts: string;
}

interface Pkg {
  name: string;
  dir: string;
  entries: Entry[];
}

/** Published workspaces and the ESM types file of each code entry point, from `exports`. */
function packages(): Pkg[] {
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const out: Pkg[] = [];
  for (const ws of workspaces as string[]) {
    const dir = join(root, ws);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    if (pkg.private) continue;
    const entries: Entry[] = [];
    for (const [sub, target] of Object.entries(pkg.exports as Record<string, unknown>)) {
      const types = (target as { import?: { types?: string } }).import?.types;
      if (types === undefined) continue;
      const dts = join(dir, types);
      if (!existsSync(dts))
        throw new Error(`${pkg.name} is not built (no ${types}): npm run build`);
      entries.push({ spec: sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`, dts });
    }
    out.push({ name: pkg.name, dir, entries });
  }
  return out;
}

const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });

/** The statement to print for a declaration (a variable's whole `declare const` statement). */
function statementOf(decl: ts.Declaration): ts.Node {
  if (ts.isVariableDeclaration(decl)) return decl.parent.parent;
  return decl;
}

/** A declaration's text without doc comments and without private members (not public surface). */
function print(node: ts.Node): string {
  return printer
    .printNode(ts.EmitHint.Unspecified, node, node.getSourceFile())
    .split("\n")
    .filter((line) => !/^\s+private /.test(line))
    .join("\n");
}

/** `declare module "x"` and `declare global` blocks: augmentations of other packages' types. */
const isAugmentation = (n: ts.Node): n is ts.ModuleDeclaration =>
  ts.isModuleDeclaration(n) &&
  (ts.isStringLiteral(n.name) || (n.flags & ts.NodeFlags.GlobalAugmentation) !== 0);

function insideAugmentation(n: ts.Node): boolean {
  for (let p = n.parent; p !== undefined; p = p.parent) if (isAugmentation(p)) return true;
  return false;
}

/** Every type name a declaration mentions, resolved through aliases. */
function referenced(node: ts.Node, checker: ts.TypeChecker, out: Set<ts.Symbol>): void {
  const visit = (n: ts.Node): void => {
    let name: ts.Node | undefined;
    if (ts.isTypeReferenceNode(n)) name = n.typeName;
    else if (ts.isExpressionWithTypeArguments(n)) name = n.expression;
    else if (ts.isTypeQueryNode(n)) name = n.exprName;
    if (name !== undefined) {
      let s = checker.getSymbolAtLocation(name);
      if (s !== undefined && s.flags & ts.SymbolFlags.Alias) s = checker.getAliasedSymbol(s);
      if (s !== undefined && !(s.flags & ts.SymbolFlags.TypeParameter)) out.add(s);
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
}

const fence = (lines: string[]) => ["```ts", ...lines, "```", ""];
const trim = (lines: string[]) => (lines.at(-1) === "" ? lines.slice(0, -1) : lines);

/** The report of every published package, generated from its build. */
export function apiReports(): PackageReport[] {
  const pkgs = packages();
  const program = ts.createProgram({
    rootNames: pkgs.flatMap((p) => p.entries.map((e) => e.dts)),
    options: {
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      noEmit: true,
      types: [],
    },
  });
  const checker = program.getTypeChecker();
  const reports: PackageReport[] = [];
  for (const pkg of pkgs) {
    const dist = `${realpathSync(pkg.dir)}/`;
    /** The symbol's declarations in this package's build, augmentations aside. */
    const own = (s: ts.Symbol) =>
      (s.declarations ?? []).filter(
        (d) => realpathSync(d.getSourceFile().fileName).startsWith(dist) && !insideAugmentation(d),
      );
    /** Symbol -> the entry point whose section printed it. */
    const printedIn = new Map<ts.Symbol, string>();
    const exported = new Set<ts.Symbol>();
    const mentions = new Set<ts.Symbol>();
    const md: string[] = [
      `## API report for "${pkg.name}"`,
      "",
      "> Generated from the built `.d.ts` by `npm run api:report`; do not edit. A change here is a",
      "> change to the package's public surface.",
      "",
    ];
    for (const entry of pkg.entries) {
      const file = program.getSourceFile(entry.dts);
      const moduleSymbol = file && checker.getSymbolAtLocation(file);
      if (file === undefined || moduleSymbol === undefined)
        throw new Error(`cannot read ${entry.dts}`);
      const lines: string[] = [];
      const exports = checker
        .getExportsOfModule(moduleSymbol)
        .sort((a, b) => a.name.localeCompare(b.name, "en"));
      for (const sym of exports) {
        const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
        exported.add(target);
        const decls = own(target);
        const as = target.name !== sym.name ? ` (exported as ${sym.name})` : "";
        if (decls.length === 0) {
          // Re-exported from another package: its own report shows the shape.
          const from = target.declarations?.[0]?.getSourceFile().fileName ?? "?";
          const pkgOf = /node_modules\/((?:@[^/]+\/)?[^/]+)|packages\/([^/]+)\//.exec(from);
          lines.push(`// ${sym.name}: re-exported from ${pkgOf?.[1] ?? pkgOf?.[2] ?? "elsewhere"}`);
          continue;
        }
        const earlier = printedIn.get(target);
        if (earlier !== undefined) {
          lines.push(`// ${sym.name}${as}: as in ${earlier}`, "");
          continue;
        }
        printedIn.set(target, entry.spec);
        lines.push(`// ${sym.name}${as}`);
        for (const d of decls) {
          lines.push(print(statementOf(d)));
          referenced(statementOf(d), checker, mentions);
        }
        lines.push("");
      }
      for (const statement of file.statements) {
        if (!isAugmentation(statement)) continue;
        lines.push("// augmentation", print(statement), "");
        referenced(statement, checker, mentions);
      }
      md.push(
        `### \`${entry.spec}\``,
        "",
        ...fence(lines.length ? trim(lines) : ["// (no exports)"]),
      );
    }
    // Declarations the exports mention, followed to what those mention in turn.
    const unexported: ts.Symbol[] = [];
    const seen = new Set<ts.Symbol>();
    const queue = [...mentions];
    while (queue.length > 0) {
      const s = queue.shift()!;
      if (seen.has(s) || exported.has(s) || own(s).length === 0) continue;
      seen.add(s);
      unexported.push(s);
      const more = new Set<ts.Symbol>();
      for (const d of own(s)) referenced(statementOf(d), checker, more);
      queue.push(...more);
    }
    if (unexported.length > 0) {
      const lines: string[] = [];
      unexported.sort((a, b) => a.name.localeCompare(b.name, "en"));
      for (const s of unexported) {
        lines.push(`// ${s.name}`);
        for (const d of own(s)) lines.push(print(statementOf(d)));
        lines.push("");
      }
      md.push("### Referenced by the exports, not exported", "", ...fence(trim(lines)));
    }
    const short = basename(pkg.dir);
    reports.push({
      name: pkg.name,
      file: join(pkg.dir.slice(root.length), "api", `${short}.api.md`),
      text: `${md.join("\n").trimEnd()}\n`,
    });
  }
  return reports;
}

/** Writes each report under `into` (the repository by default). */
export function writeReports(reports: PackageReport[], into = root): void {
  for (const r of reports) {
    const path = join(into, r.file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, r.text);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const reports = apiReports();
  writeReports(reports);
  for (const r of reports) console.log(`${r.file}`);
}
