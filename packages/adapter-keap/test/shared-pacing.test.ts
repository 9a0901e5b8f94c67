import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";
import { SharedPacing } from "../src/shared-pacing.js";
import { BARE, events, ok, patClient, scripted, throttled } from "./helpers.js";

describe("SharedPacing", () => {
  it("hands one process's slow-down to another on the same store", async () => {
    const store = memoryStore();
    const shared = { store, prefix: "keap", partitionBy: "app" };
    const key = { app: "a" };
    const a = new SharedPacing(shared, ["app"], key);
    const b = new SharedPacing(shared, ["app"], key);
    const seen: number[] = [];
    b.poll(0, (ms) => seen.push(ms));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([]);
    a.publish(48.4);
    await new Promise((r) => setTimeout(r, 10));
    b.poll(1_000, (ms) => seen.push(ms));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([48.4]);
    // Read once: the same value again is not news.
    b.poll(2_000, (ms) => seen.push(ms));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([48.4]);
  });
});

describe("processes sharing a store", () => {
  it("all slow down on a spike 429 one of them receives", async () => {
    const store = memoryStore();
    const a = patClient(scripted([throttled(BARE), ok()]).fetch, { store });
    const b = patClient(scripted([ok()]).fetch, { store });
    const bPacing = events(b, "pacing");
    await a.fetch("https://api.example/a");
    expect(a.stats().spacingMs).toBe(242); // 220 ms x 1.1
    // b learns of it from the store on its next request (read off the request's path).
    await b.fetch("https://api.example/b");
    await new Promise((r) => setTimeout(r, 20));
    expect(bPacing).toEqual([{ spacingMs: 242, reason: "spike" }]);
    expect(b.stats().spacingMs).toBe(242);
    a.close();
    b.close();
  });
});
