/**
 * The small part of RFC 8941 structured fields that rate-limit headers use: lists of items whose
 * bare item is a string or token, each with `;key=value` parameters.
 */

/**
 * A policy name as an sf-string. sf-strings hold printable ASCII only, so anything else (and `%`,
 * to keep the mapping reversible) is percent-encoded as UTF-8; `parseSfList` decodes it.
 */
export function sfString(name: string): string {
  // The same name again (one policy binds on most responses): no map lookup.
  if (name === lastName) return lastQuoted;
  let quoted = QUOTED_NAMES.get(name);
  if (quoted === undefined) {
    quoted = quote(name);
    // Policy names are few; the bound only guards against a caller inventing them per request.
    if (QUOTED_NAMES.size >= 1024) QUOTED_NAMES.clear();
    QUOTED_NAMES.set(name, quoted);
  }
  lastName = name;
  lastQuoted = quoted;
  return quoted;
}

const QUOTED_NAMES = new Map<string, string>();
let lastName: string | undefined;
let lastQuoted = "";

function quote(name: string): string {
  let out = '"';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += `\\${name[i]}`;
    else if (c >= 0x20 && c <= 0x7e && c !== 0x25) out += name[i];
    else {
      const cp = name.codePointAt(i)!;
      if (cp > 0xffff) i++;
      out += percentEncode(cp);
    }
  }
  return `${out}"`;
}

function percentEncode(codePoint: number): string {
  try {
    return encodeURIComponent(String.fromCodePoint(codePoint));
  } catch {
    return "%EF%BF%BD"; // a lone surrogate: U+FFFD, as TextEncoder would write it
  }
}

export interface SfItem {
  readonly name: string;
  readonly params: ReadonlyMap<string, string>;
}

/** Splits on `sep` outside double-quoted strings. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === "\\") {
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === sep) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

const QUOTED = /^"((?:[^"\\]|\\.)*)"$/;
const TOKEN = /^[A-Za-z*][A-Za-z0-9_\-.:%*/!#$&'+^`|~]*$/;

function decodeName(text: string): string {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A bare item that is a string or a token, unquoted; undefined when it is neither. */
export function sfBareName(text: string): string | undefined {
  const t = text.trim();
  const q = QUOTED.exec(t);
  if (q) return decodeName(q[1]!.replace(/\\(.)/g, "$1"));
  return TOKEN.test(t) ? t : undefined;
}

/**
 * A lenient list: `"name";k=v;k=v, ...`. Members without a valid name are passed to `onBad`
 * and skipped; parameter values are kept as text (strings unquoted).
 */
export function parseSfList(raw: string, onBad: (member: string) => void): SfItem[] {
  const items: SfItem[] = [];
  for (const member of splitOutsideQuotes(raw, ",")) {
    if (member.trim() === "") continue;
    const [head = "", ...rest] = splitOutsideQuotes(member, ";");
    const name = sfBareName(head);
    if (name === undefined || name === "" || name.length > 200) {
      onBad(member);
      continue;
    }
    const params = new Map<string, string>();
    for (const param of rest) {
      const eq = param.indexOf("=");
      const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? "" : param.slice(eq + 1).trim();
      if (key !== "" && !params.has(key)) params.set(key, sfBareName(value) ?? value);
    }
    items.push({ name, params });
  }
  return items;
}
