// The TypeScript code blocks of the guides (docs/**/*.md, generated pages aside), each written out
// as a module of its own, to be compiled against the built packages as a user would.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const docsDir = fileURLToPath(new URL("../../docs/", import.meta.url));
const GENERATED = new Set(["api", "public", ".vitepress", "examples"]);

export interface CodeBlock {
  /** `getting-started.md:13` */
  where: string;
  code: string;
}

function guides(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (!GENERATED.has(name)) out.push(...guides(path));
    } else if (name.endsWith(".md") && name !== "benchmark-results.md") out.push(path);
  }
  return out.sort();
}

/** Every ```ts block; a block whose info string says `ts fragment` is a piece of a larger one. */
export function codeBlocks(): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  for (const file of guides(docsDir)) {
    const lines = readFileSync(file, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const open = /^```(ts|typescript)(\s.*)?$/.exec(lines[i]!);
      if (!open || /\bfragment\b/.test(open[2] ?? "")) continue;
      const start = i + 1;
      let end = start;
      while (end < lines.length && !lines[end]!.startsWith("```")) end++;
      blocks.push({
        where: `${relative(docsDir, file)}:${start}`,
        code: lines.slice(start, end).join("\n"),
      });
      i = end;
    }
  }
  return blocks;
}
