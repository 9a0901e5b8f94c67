// `npm run docs:coverage`: every exported symbol of every public entry point has a doc comment,
// and so does every member (property, method, accessor, enum member) of an exported class,
// interface, enum or object type, as TypeDoc's `validation.notDocumented` asks of the API
// reference. Read with the TypeScript compiler API from the sources, in one program for all
// entry points (TypeDoc takes minutes here, one run per entry point); a member without a comment
// of its own counts as documented when it inherits one (a class member implementing a
// documented interface member), as in the reference. `@internal` and private members are left
// out, as the reference leaves them out. Lists what lacks a comment and fails while anything
// does; scripts/docs-site/coverage.test.ts keeps it at 0.
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { entryPoints } from "./build.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** `@sluice/core: Limiter.take  (packages/core/src/limiter/index.ts:24)` per missing comment. */
export function undocumented(): string[] {
  const entries = entryPoints();
  const configFile = join(root, "tsconfig.json");
  const config = ts.getParsedCommandLineOfConfigFile(
    configFile,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (config === undefined) throw new Error(`cannot read ${configFile}`);
  const program = ts.createProgram({
    rootNames: entries.map((e) => e.file),
    options: { ...config.options, noEmit: true, skipLibCheck: true },
  });
  const checker = program.getTypeChecker();
  const missing: string[] = [];
  const done = new Set<ts.Symbol>();

  const where = (d: ts.Declaration) => {
    const sf = d.getSourceFile();
    const { line } = sf.getLineAndCharacterOfPosition(d.getStart(sf));
    return `${relative(root, sf.fileName)}:${line + 1}`;
  };
  const tags = (d: ts.Node) => ts.getJSDocTags(d).map((t) => t.tagName.text);
  const internal = (s: ts.Symbol) =>
    (s.declarations ?? []).some((d) => tags(d).includes("internal"));
  const hasDoc = (s: ts.Symbol) =>
    s.getDocumentationComment(checker).length > 0 ||
    (s.declarations ?? []).some(
      (d) =>
        ts.getJSDocCommentsAndTags(d).length > 0 ||
        // A function's comment sits on its signatures.
        ((ts.isFunctionDeclaration(d) || ts.isMethodSignature(d) || ts.isMethodDeclaration(d)) &&
          checker.getSignatureFromDeclaration(d)?.getDocumentationComment(checker).length),
    );
  const hidden = (d: ts.Declaration) => {
    const name = (d as ts.NamedDeclaration).name;
    const flags = ts.getCombinedModifierFlags(d);
    return (
      (flags & ts.ModifierFlags.Private) !== 0 ||
      (name !== undefined && ts.isPrivateIdentifier(name)) ||
      ts.isConstructorDeclaration(d) ||
      ts.isIndexSignatureDeclaration(d) ||
      ts.isCallSignatureDeclaration(d) ||
      ts.isConstructSignatureDeclaration(d)
    );
  };
  /** Members documented with the type: those of an interface, a class, an enum, an object type. */
  const membersOf = (s: ts.Symbol): ts.Symbol[] => {
    const out: ts.Symbol[] = [];
    for (const d of s.declarations ?? []) {
      let table: ts.Node | undefined;
      if (ts.isInterfaceDeclaration(d) || ts.isClassDeclaration(d) || ts.isEnumDeclaration(d)) {
        table = d;
      } else if (ts.isTypeAliasDeclaration(d) && ts.isTypeLiteralNode(d.type)) table = d.type;
      if (table === undefined) continue;
      for (const m of (table as ts.ClassDeclaration).members) {
        if (hidden(m as ts.Declaration)) continue;
        const ms = checker.getSymbolAtLocation((m as ts.NamedDeclaration).name ?? m);
        if (ms !== undefined && !out.includes(ms)) out.push(ms);
      }
    }
    return out;
  };

  for (const entry of entries) {
    const sf = program.getSourceFile(entry.file);
    const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
    if (moduleSymbol === undefined) throw new Error(`cannot read ${entry.file}`);
    const pkgDir = `${dirname(entry.file.slice(0, entry.file.indexOf("/src/") + 1))}/`;
    for (const exp of checker.getExportsOfModule(moduleSymbol)) {
      const s = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
      const decls = s.declarations ?? [];
      // Another package's symbol is checked with that package.
      if (decls.length === 0 || !decls[0]!.getSourceFile().fileName.startsWith(pkgDir)) continue;
      if (done.has(s) || internal(s)) continue;
      done.add(s);
      if (!hasDoc(s)) missing.push(`${entry.spec}: ${exp.name}  (${where(decls[0]!)})`);
      for (const m of membersOf(s)) {
        if (internal(m) || hasDoc(m)) continue;
        missing.push(
          `${entry.spec}: ${exp.name}.${checker.symbolToString(m)}  (${where(m.declarations![0]!)})`,
        );
      }
    }
  }
  return missing;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = undocumented();
  for (const line of missing) console.log(line);
  console.log(`${missing.length} exported symbol(s) without documentation`);
  if (missing.length > 0) process.exitCode = 1;
}
