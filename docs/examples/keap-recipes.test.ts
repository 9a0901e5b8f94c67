import { readFileSync } from "node:fs";
import { createKeapClient, type KeapClientOptions } from "@sluice/adapter-keap";
import { type KeapSimulator, startKeapSimulator } from "@sluice/adapter-keap/simulator";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import { axiosClient, gotClient, kyClient, undiciOptions } from "./keap-recipes.js";

// The recipes with the real libraries, against the simulator: every request is paced (no 429
// reaches the simulator) and every response is reconciled (the server's quota is learned).
let sim: KeapSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const auth = { authorization: "Bearer pat-1" };

async function setUp(extra: Partial<KeapClientOptions> = {}) {
  sim = await startKeapSimulator({ profile: "pat", limits: { quota: 1_000 } });
  const keap = createKeapClient({
    profile: "pat",
    store: memoryStore(),
    identity: { tenant: "ab103", token: "pat-1" },
    ...extra,
  });
  const quotaLeft = async () =>
    (await keap.limiter.peek(keap.key)).policies.find((p) => p.name === "quota")?.remaining;
  return { keap, url: sim.url, quotaLeft };
}

describe("docs/keap.md recipes with the real libraries", () => {
  it("ky takes keap.fetch as its fetch", async () => {
    const { keap, url, quotaLeft } = await setUp();
    const api = kyClient(keap, url);
    const statuses = await Promise.all(
      Array.from({ length: 4 }, async () => (await api.get("contacts", { headers: auth })).status),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(sim!.stats()).toMatchObject({ served: 4, throttled: 0 });
    expect(await quotaLeft()).toBe(996);
    keap.close();
  });

  it("axios's fetch adapter takes keap.fetch as env.fetch", async () => {
    const { keap, url, quotaLeft } = await setUp();
    const http = axiosClient(keap, url);
    const statuses = await Promise.all(
      Array.from(
        { length: 4 },
        async () => (await http.get("/contacts", { headers: auth })).status,
      ),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(sim!.stats()).toMatchObject({ served: 4, throttled: 0 });
    expect(await quotaLeft()).toBe(996);
    keap.close();
  });

  it("got waits for capacity and reconciles in its hooks", async () => {
    const { keap, url, quotaLeft } = await setUp();
    const api = gotClient(keap, url);
    const statuses = await Promise.all(
      Array.from(
        { length: 4 },
        async () => (await api.get("contacts", { headers: auth })).statusCode,
      ),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(sim!.stats()).toMatchObject({ served: 4, throttled: 0 });
    expect(await quotaLeft()).toBe(996);
    keap.close();
  });

  it("keap.fetch sends with undici's fetch", async () => {
    const { keap, url, quotaLeft } = await setUp(undiciOptions());
    const res = await keap.fetch(`${url}/contacts`, { headers: auth });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
    expect(await quotaLeft()).toBe(999);
    keap.close();
  });

  it("docs/keap.md shows the recipes exactly as this file holds them", () => {
    const doc = readFileSync(new URL("../keap.md", import.meta.url), "utf8");
    const source = readFileSync(new URL("./keap-recipes.ts", import.meta.url), "utf8");
    const functions = source.match(/^export function [\s\S]*?^\}$/gm) ?? [];
    expect(functions).toHaveLength(4);
    for (const f of functions) expect(doc).toContain(f);
  });
});
