// Every TypeScript code block of the guides compiles against the built packages (node_modules/
// @sluice/* -> packages/*/dist, as a user resolves them), in strict mode. A block may leave out
// its imports of sluice names and use the usual variables (`limiter`, `store`, `key`, ...): a
// header supplies both, unless the block declares them itself. `npm run build` must have run.
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
/** Third-party modules a guide shows for interoperation, not installed here. */
const AMBIENT = `declare module "undici" { export const fetch: typeof globalThis.fetch; export const Agent: any; }
declare module "ky" { const ky: any; export default ky; }
declare module "axios" { const axios: any; export default axios; }
declare module "got" {
  type Hook = (res: { headers: Record<string, string | string[] | undefined> }) => unknown;
  const got: { extend(o: { hooks: { beforeRequest?: (() => unknown)[]; afterResponse?: Hook[] } }): unknown };
  export default got;
}
`;

/** Names each built entry point exports (values and types), read from its declarations. */
function exportsOf(specs: string[]): Map<string, string> {
  const file = join(dir, "exports-probe.ts");
  writeFileSync(file, specs.map((s, i) => `export * as m${i} from "${s}";`).join("\n"));
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const byName = new Map<string, string>();
  specs.forEach((spec, i) => {
    const probe = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
    const ns = checker.getExportsOfModule(probe).find((s) => s.name === `m${i}`)!;
    const target = checker.getAliasedSymbol(ns);
    for (const s of checker.getExportsOfModule(target)) {
      if (!byName.has(s.name)) byName.set(s.name, spec);
    }
  });
  return byName;
}

/** Names a block imports or declares itself. */
function declared(code: string): Set<string> {
  const names = new Set<string>();
  const list = (text: string) => {
    for (const part of text.split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+|\s*:\s*/)
        .pop()!
        .trim();
      if (/^[\w$]+$/.test(name)) names.add(name);
    }
  };
  for (const m of code.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}/g)) list(m[1]!);
  for (const m of code.matchAll(/import\s+(?:type\s+)?([\w$]+)\s*(?:,|from)/g)) names.add(m[1]!);
  for (const m of code.matchAll(/import\s+\*\s+as\s+([\w$]+)/g)) names.add(m[1]!);
  for (const m of code.matchAll(/\b(?:const|let|var)\s+\{([^}]*)\}/g)) list(m[1]!);
  for (const m of code.matchAll(
    /\b(?:const|let|var|function|class|interface|type|enum)\s+([\w$]+)/g,
  ))
    names.add(m[1]!);
  return names;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("code blocks of the guides", () => {
  it("type-check against the built packages", () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    writeFileSync(join(dir, "ambient.d.ts"), AMBIENT);
    const names = exportsOf(entryPoints().map((e) => e.spec));
    const blocks = codeBlocks();
    expect(blocks.length).toBeGreaterThan(10);
    const files: string[] = [join(dir, "ambient.d.ts")];
    const where = new Map<string, string>();
    blocks.forEach((b, i) => {
      const own = declared(b.code);
      const used = new Set(b.code.match(/\b[A-Za-z_$][\w$]*\b/g) ?? []);
      const imports = new Map<string, string[]>();
      const needed = [...used].filter((n) => !own.has(n));
      for (const n of [
        ...needed,
        ...Object.keys(CONTEXT)
          .filter((c) => used.has(c) && !own.has(c))
          .flatMap(typesOf),
      ]) {
        const spec = names.get(n);
        if (spec !== undefined && !own.has(n)) imports.set(spec, [...(imports.get(spec) ?? []), n]);
      }
      const header = [
        ...[...imports].map(
          ([spec, ns]) => `import { ${[...new Set(ns)].join(", ")} } from "${spec}";`,
        ),
        ...Object.entries(CONTEXT)
          .filter(([n]) => used.has(n) && !own.has(n))
          .map(([, decl]) => decl),
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
      const [md, first] = at.split(":");
      return `docs/${md}:${Number(first) + line - 1}: ${text}`;
    });
    expect(problems).toEqual([]);
  }, 120_000);
});

/** The type names a context variable's declaration mentions (imported when it is used). */
function typesOf(name: string): string[] {
  return CONTEXT[name]!.match(/:\s*(\w+)/g)?.map((m) => m.replace(/:\s*/, "")) ?? [];
}
