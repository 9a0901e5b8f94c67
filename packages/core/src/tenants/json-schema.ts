import { z } from "zod";
import { tenantConfigSchema } from "./zod-spec.js";

/** The published `@sluice/core/tenants.schema.json`, as text (generated from the zod schema). */
export function tenantConfigJsonSchemaText(): string {
  const schema = z.toJSONSchema(tenantConfigSchema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
  });
  return `${JSON.stringify(schema, null, 2)}\n`;
}

interface Node {
  description?: string;
  type?: string | string[];
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  items?: Node;
  anyOf?: Node[];
  oneOf?: Node[];
  const?: unknown;
  enum?: unknown[];
  title?: string;
}

function typeOf(n: Node): string {
  if (n.const !== undefined) return JSON.stringify(n.const);
  if (n.enum) return n.enum.map((e) => JSON.stringify(e)).join(" \\| ");
  const alts = n.anyOf ?? n.oneOf;
  if (alts) return alts.map((a) => a.title ?? typeOf(a)).join(" \\| ");
  if (n.type === "array" && n.items) return `array of ${n.items.title ?? typeOf(n.items)}`;
  if (n.type === "object" && typeof n.additionalProperties === "object")
    return "object (keyed by name)";
  return Array.isArray(n.type) ? n.type.join(" \\| ") : (n.type ?? "any");
}

function rows(n: Node, path: string, out: string[]): void {
  for (const [k, child] of Object.entries(n.properties ?? {})) {
    const p = path === "" ? k : `${path}.${k}`;
    const req = n.required?.includes(k) ? "yes" : "no";
    out.push(
      `| \`${p}\` | ${typeOf(child)} | ${req} | ${(child.description ?? "").replace(/\|/g, "\\|")} |`,
    );
    rows(child, p, out);
    if (typeof child.additionalProperties === "object")
      rows(child.additionalProperties, `${p}.<key>`, out);
    if (child.items) {
      rows(child.items, `${p}[]`, out);
      for (const alt of child.items.anyOf ?? child.items.oneOf ?? []) {
        if (alt.title) rows(alt, `${p}[] (${alt.title})`, out);
      }
    }
    for (const alt of child.anyOf ?? child.oneOf ?? [])
      if (alt.title) rows(alt, `${p} (${alt.title})`, out);
  }
}

/** The generated field reference of docs/configuration.md (between the markers). */
export function tenantConfigReference(): string {
  const schema = z.toJSONSchema(tenantConfigSchema, {
    io: "input",
    unrepresentable: "any",
  }) as Node;
  const out = ["| field | type | required | description |", "| --- | --- | --- | --- |"];
  rows(schema, "", out);
  return `${out.join("\n")}\n`;
}

export const DOCS_BEGIN =
  "<!-- BEGIN GENERATED: tenant config reference (scripts/gen-config-docs.ts) -->";
export const DOCS_END = "<!-- END GENERATED -->";

export function withReference(doc: string): string {
  const start = doc.indexOf(DOCS_BEGIN);
  const end = doc.indexOf(DOCS_END);
  if (start < 0 || end < start)
    throw new Error("docs/configuration.md lacks the generated-reference markers");
  return `${doc.slice(0, start + DOCS_BEGIN.length)}\n\n${tenantConfigReference()}\n${doc.slice(end)}`;
}
