import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { imagesDir, renderCharts } from "./charts.js";

describe("docs/images", () => {
  it("holds exactly the charts that scripts/charts.ts generates (run npm run docs:charts)", async () => {
    const charts = await renderCharts();
    const onDisk = readdirSync(imagesDir).filter((f) => f.endsWith(".svg"));
    expect(onDisk.sort()).toEqual(Object.keys(charts).sort());
    for (const [name, svg] of Object.entries(charts)) {
      expect(readFileSync(imagesDir + name, "utf8"), name).toBe(svg);
    }
  });

  it("renders the same SVG on every run", async () => {
    expect(await renderCharts()).toEqual(await renderCharts());
  });
});
