import { existsSync, readFileSync } from "node:fs";
import { defineConfig } from "vitepress";

// The API reference is generated into docs/api by `npm run docs:build` (TypeDoc), with its sidebar.
const apiSidebarFile = new URL("../api/typedoc-sidebar.json", import.meta.url);
const apiSidebar = existsSync(apiSidebarFile)
  ? JSON.parse(readFileSync(apiSidebarFile, "utf8"))
  : [];

function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

export default defineConfig({
  title: "sluice",
  description: "Exact, store-backed rate limiting for Node.js",
  lang: "en",
  // The repository's own folders (examples are copied to public/ as plain files).
  srcExclude: ["examples/**", "README.md"],
  lastUpdated: false,
  // Anchors as GitHub makes them, so links between the guides work on both.
  markdown: { anchor: { slugify: githubSlug } },
  themeConfig: {
    nav: [
      { text: "Guide", link: "/getting-started" },
      { text: "Stores", link: "/stores/redis" },
      { text: "Keap", link: "/keap" },
      { text: "API", link: "/api/" },
      { text: "Benchmarks", link: "/benchmarks" },
    ],
    sidebar: [
      {
        text: "Guide",
        items: [
          { text: "Getting started", link: "/getting-started" },
          { text: "Concepts", link: "/concepts" },
          { text: "Configuration", link: "/configuration" },
          { text: "Errors", link: "/errors" },
          { text: "Observability", link: "/observability" },
          {
            text: "Migrating from rate-limiter-flexible",
            link: "/migrating-from-rate-limiter-flexible",
          },
        ],
      },
      {
        text: "Stores",
        items: [
          { text: "Redis", link: "/stores/redis" },
          { text: "PostgreSQL", link: "/stores/postgres" },
          { text: "Writing a store", link: "/stores/writing-a-store" },
        ],
      },
      { text: "Keap", items: [{ text: "Keap adapter", link: "/keap" }] },
      {
        text: "Benchmarks",
        items: [
          { text: "Benchmarks", link: "/benchmarks" },
          { text: "Latest results", link: "/benchmark-results" },
        ],
      },
      { text: "API reference", link: "/api/", items: apiSidebar },
    ],
    search: { provider: "local" },
    socialLinks: [{ icon: "github", link: "https://github.com/sluice-rl/sluice" }],
    footer: { message: "MIT License. Copyright (c) 2026 the sluice authors." },
  },
});
