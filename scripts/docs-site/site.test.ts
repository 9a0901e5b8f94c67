/// <reference lib="dom" />
// Builds the docs site (`npm run docs:build`) and opens every page in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): no console error, no page error, no broken
// internal link or anchor, no image that fails to load. Never skipped: without Chromium it fails
// (.ci/run installs it). Screenshots of the home page and a guide go to .tmp/docs-screenshots/.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dist = join(root, "docs/.vitepress/dist");
const shots = join(root, ".tmp/docs-screenshots");
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".ts": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** The file a URL path names, resolved the way VitePress's static output expects. */
function fileFor(pathname: string): string | undefined {
  const path = decodeURIComponent(pathname);
  for (const candidate of [path, `${path}.html`, join(path, "index.html")]) {
    const file = join(dist, candidate);
    if (file.startsWith(dist) && existsSync(file) && statSync(file).isFile()) return file;
  }
  return undefined;
}

function pages(dir = dist): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "assets") out.push(...pages(path));
    } else if (name.endsWith(".html") && name !== "404.html") out.push(path);
  }
  return out.sort();
}

let server: Server;
let base = "";
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  }
  // DOCS_SITE_REUSE=1 reuses the last build while iterating on the site by hand (never in CI).
  if (process.env.DOCS_SITE_REUSE !== "1" || process.env.CI || !existsSync(dist)) {
    execFileSync(process.execPath, ["--import", "tsx", join(root, "scripts/docs-site/build.ts")], {
      cwd: root,
      stdio: "pipe",
    });
  }
  server = createServer((req, res) => {
    const file = fileFor(new URL(req.url ?? "/", "http://x").pathname);
    if (file === undefined) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe("the docs site", () => {
  it("opens every page without a console error, a broken link or a missing image", async () => {
    const all = pages();
    expect(all.length).toBeGreaterThan(15);
    const problems: string[] = [];
    const anchors = new Map<string, Set<string>>();
    const links = new Set<string>();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Nothing leaves the machine: a request to another host would hang or fail the page.
    await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
    for (const file of all) {
      const path = `/${relative(dist, file)}`;
      const page = await context.newPage();
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`${path}: console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`${path}: page error: ${e.message}`));
      const res = await page.goto(base + path, { waitUntil: "load" });
      if (res?.status() !== 200) problems.push(`${path}: HTTP ${res?.status()}`);
      const found = await page.evaluate(() => ({
        ids: Array.from(document.querySelectorAll("[id]")).map((e) => e.id),
        hrefs: Array.from(document.querySelectorAll("a[href]")).map(
          (a) => (a as HTMLAnchorElement).href,
        ),
        images: Array.from(document.querySelectorAll("img")).map((i) => ({
          src: i.src,
          ok: i.complete && i.naturalWidth > 0,
        })),
      }));
      anchors.set(new URL(base + path).pathname, new Set(found.ids));
      for (const h of found.hrefs) links.add(`${path} ${h}`);
      for (const img of found.images) if (!img.ok) problems.push(`${path}: image ${img.src}`);
      if (path === "/index.html") await page.screenshot({ path: join(shots, "home.png") });
      if (path === "/concepts.html") {
        await page.screenshot({ path: join(shots, "concepts.png"), fullPage: false });
      }
      await page.close();
    }
    for (const entry of links) {
      const [from, href] = entry.split(" ") as [string, string];
      const url = new URL(href);
      if (url.origin !== base) continue; // the repository's own pages: not reachable from a test
      const file = fileFor(url.pathname);
      if (file === undefined) {
        problems.push(`${from}: broken link ${url.pathname}`);
        continue;
      }
      const hash = decodeURIComponent(url.hash.slice(1));
      if (hash === "" || !file.endsWith(".html")) continue;
      const target = `/${relative(dist, file)}`;
      const ids = anchors.get(target);
      if (ids !== undefined && !ids.has(hash)) problems.push(`${from}: no #${hash} on ${target}`);
    }
    await context.close();
    if (problems.length > 0) console.log(problems.join("\n"));
    expect(problems).toEqual([]);
  }, 240_000);

  it("has a local search that finds a guide", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/index.html`);
    await page.click(".VPNavBarSearch button");
    await page.fill("input.search-input", "sliding window precision");
    const first = page.locator(".result").first();
    await first.waitFor({ timeout: 10_000 });
    expect(await page.locator(".result").count()).toBeGreaterThan(0);
    await page.close();
  }, 60_000);
});

mkdirSync(shots, { recursive: true });
