// Every TypeScript code block of the guides compiles against the built packages (node_modules/
// @sluice/* -> packages/*/dist, as a user resolves them), in strict mode, with the third-party
// libraries the guides show (express, fastify, hono, ioredis, pg, undici, ky, axios, got) as
// installed in the workspace. A block may leave out its imports of sluice names and use the
// usual variables (`limiter`, `store`, `key`, ...): a header supplies both, unless the block
// imports or declares them itself. `npm run build` must have run.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { entryPoints } from "./build.js";
import { codeBlocks } from "./code-blocks.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = join(root, ".tmp", `doc-blocks-${process.pid}`);

/** Usual variables of the guides' fragments, with their types. */
const CONTEXT: Record<string, string> = {
  limiter: "declare const limiter: Limiter;",
  store: "declare const store: Store;",
  key: "declare const key: string;",
  json: "declare const json: unknown;",
  keap: "declare const keap: KeapClient;",
  identity: "declare const identity: KeapIdentity;",
  response: "declare const response: Response;",
  input: "declare const input: string;",
  init: "declare const init: RequestInit;",
  scheduleRetry: "declare function scheduleRetry(ms?: number): void;",
};

/**
 * The store authors' entry point. Its plain lowercase names (`pool`, `concurrency`, `evaluate`:
 * the kinds' math and the reference) are also what a guide calls its own variables (a pg
 * `pool`), so they are supplied only to a block that imports from this entry point itself;
 * its other names (`StoreRequest`, `readAnswer`, `KINDS`) can only mean the export.
 */
const STORE_ENTRY = "@sluice/core/store";

/**
 * Names each built entry point exports (values and types), read from its declarations, with the
 * entry point a block gets each from. A name that entry points export with different meanings
 * (`rateLimit` from each `@sluice/http/<framework>`) maps to `null`: the block imports it.
 */
function exportsOf(specs: string[]): Map<string, string | null> {
  const file = join(dir, "exports-probe.ts");
  writeFileSync(file, specs.map((s, i) => `export * as m${i} from "${s}";`).join("\n"));
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const probe = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  const original = (s: ts.Symbol) =>
    s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
  const byName = new Map<string, { spec: string | null; symbol: ts.Symbol }>();
  specs.forEach((spec, i) => {
    const ns = checker.getExportsOfModule(probe).find((s) => s.name === `m${i}`)!;
    for (const s of checker.getExportsOfModule(checker.getAliasedSymbol(ns))) {
      if (s.name === "default") continue;
      const seen = byName.get(s.name);
      // The same declaration through two entry points (`Store`) comes from the first.
      if (seen === undefined) byName.set(s.name, { spec, symbol: original(s) });
      else if (seen.symbol !== original(s)) seen.spec = null;
    }
  });
  return new Map([...byName].map(([name, { spec }]) => [name, spec]));
}

/** What a block imports and declares at its top level, what it refers to, and its imports' sources. */
function namesOf(code: string): { own: Set<string>; used: Set<string>; from: Set<string> } {
  const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.ES2022, true);
  const own = new Set<string>();
  const used = new Set<string>();
  const from = new Set<string>();
  const bind = (name: ts.BindingName | undefined): void => {
    if (name === undefined) return;
    if (ts.isIdentifier(name)) own.add(name.text);
    else for (const e of name.elements) if (!ts.isOmittedExpression(e)) bind(e.name);
  };
  for (const st of source.statements) {
    if (ts.isImportDeclaration(st)) {
      if (ts.isStringLiteral(st.moduleSpecifier)) from.add(st.moduleSpecifier.text);
      const clause = st.importClause;
      bind(clause?.name);
      const named = clause?.namedBindings;
      if (named !== undefined && ts.isNamespaceImport(named)) bind(named.name);
      else if (named !== undefined) for (const e of named.elements) bind(e.name);
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) bind(d.name);
    } else if (
      ts.isFunctionDeclaration(st) ||
      ts.isClassDeclaration(st) ||
      ts.isInterfaceDeclaration(st) ||
      ts.isTypeAliasDeclaration(st) ||
      ts.isEnumDeclaration(st) ||
      ts.isModuleDeclaration(st) ||
      ts.isImportEqualsDeclaration(st)
    ) {
      if (st.name !== undefined && ts.isIdentifier(st.name)) own.add(st.name.text);
    }
  }
  // Identifiers that refer to something: not member names after a dot, not property keys.
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) {
      const p = node.parent;
      const member =
        ((ts.isPropertyAccessExpression(p) || ts.isQualifiedName(p)) &&
          (ts.isPropertyAccessExpression(p) ? p.name : p.right) === node) ||
        ((ts.isPropertyAssignment(p) ||
          ts.isPropertySignature(p) ||
          ts.isPropertyDeclaration(p) ||
          ts.isMethodDeclaration(p) ||
          ts.isMethodSignature(p) ||
          ts.isGetAccessor(p) ||
          ts.isSetAccessor(p) ||
          ts.isEnumMember(p)) &&
          p.name === node);
      if (!member) used.add(node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { own, used, from };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("code blocks of the guides", () => {
  it("type-check against the built packages", () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    const names = exportsOf(entryPoints().map((e) => e.spec));
    const blocks = codeBlocks();
    expect(blocks.length).toBeGreaterThan(10);
    const files: string[] = [];
    const where = new Map<string, string>();
    blocks.forEach((b, i) => {
      const { own, used, from } = namesOf(b.code);
      const context = Object.keys(CONTEXT).filter((c) => used.has(c) && !own.has(c));
      const imports = new Map<string, Set<string>>();
      for (const n of [...used, ...context.flatMap(typesOf)]) {
        const spec = names.get(n);
        if (spec == null || own.has(n)) continue;
        if (spec === STORE_ENTRY && /^[a-z]+$/.test(n) && !from.has(STORE_ENTRY)) continue;
        imports.set(spec, (imports.get(spec) ?? new Set()).add(n));
      }
      const header = [
        ...[...imports].map(([spec, ns]) => `import { ${[...ns].join(", ")} } from "${spec}";`),
        ...context.map((c) => CONTEXT[c]!),
      ];
      const file = join(dir, `block${i}.ts`);
      // The header goes on the first line so the block's own line numbers stay readable.
      writeFileSync(file, `${header.join(" ")}\n${b.code}\nexport {};\n`);
      files.push(file);
      where.set(file, b.where);
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2023.d.ts"],
      types: ["node"],
      skipLibCheck: true,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (d.file === undefined) return text;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
      const at = where.get(d.file.fileName);
      if (at === undefined) return `${d.file.fileName}: ${text}`;
      const [md, fence] = at.split(":");
      // Line 0 is the header; line n is the block's n-th line, the fence's line + n.
      return `docs/${md}:${Number(fence) + line}: ${line === 0 ? "(header) " : ""}${text}`;
    });
    expect(problems).toEqual([]);
  }, 120_000);
});

/** The type names a context variable's declaration mentions (imported when it is used). */
function typesOf(name: string): string[] {
  return CONTEXT[name]!.match(/:\s*(\w+)/g)?.map((m) => m.replace(/:\s*/, "")) ?? [];
}
