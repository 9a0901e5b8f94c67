import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";
import { createKeapClient, KeapQuotaExhaustedError } from "../src/index.js";
import { atNoon, BARE, events, ok, PAT, patClient, scripted, throttled } from "./helpers.js";

const QUOTA_FAULT = JSON.stringify({
  fault: {
    faultstring: "Rate limit quota violation. Quota limit exceeded. Identifier : x",
    detail: { errorcode: "policies.ratelimit.QuotaViolation" },
  },
});
const spikeFault = (rate: string) =>
  JSON.stringify({
    fault: {
      faultstring: `Spike arrest violation. Allowed rate : MessageRate{${rate}, maxBurstMessageCount=1.0}`,
      detail: { errorcode: "policies.ratelimit.SpikeArrestViolation" },
    },
  });
const THROTTLE_EMPTY = {
  "x-keap-product-throttle-limit": "240",
  "x-keap-product-throttle-available": "0",
  "x-keap-product-throttle-time-unit": "minute",
  "x-keap-product-throttle-interval": "1",
};
const BLANK = {
  "x-keap-product-spike-limit": "",
  "x-keap-product-throttle-limit": "",
  "x-keap-product-throttle-available": "",
  "x-keap-product-quota-limit": "",
  "x-keap-product-quota-available": "",
};

describe("keap.fetch is bound", () => {
  it("works when called detached, as libraries call a fetch option", async () => {
    const keap = patClient(scripted([ok()]).fetch);
    const { fetch } = keap;
    expect((await fetch("https://api.example/a")).status).toBe(200);
    keap.close();
  });
});

describe("a 429 whose headers say the window is empty", () => {
  it("is not followed by fast retries into it: the window decides, and one probe goes first", async () => {
    // The server's throttle window is empty for its first second; later answers take 100 ms.
    let start = 0;
    const calls: number[] = [];
    const fetch = (async () => {
      const now = Date.now();
      if (calls.length === 0) start = now;
      calls.push(now - start);
      if (now - start < 1_000) {
        return new Response(BARE, {
          status: 429,
          headers: { ...THROTTLE_EMPTY, "retry-after": "1" },
        });
      }
      await new Promise((r) => setTimeout(r, 100));
      return new Response("{}", { status: 200 });
    }) as typeof globalThis.fetch;
    const keap = patClient(fetch, { overrides: { spike: { refill: { tokens: 1, every: 10 } } } });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => keap.fetch("https://api.example/a")),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // Nothing else went into the empty window ...
    expect(calls.filter((at) => at < 1_000)).toEqual([0]);
    // ... and when it reopened, the other callers waited for the probe's answer.
    expect(calls).toHaveLength(5);
    expect(calls[2]! - calls[1]!).toBeGreaterThanOrEqual(95);
    keap.close();
  });
});

describe("repeated 429s escalate", () => {
  it("a QuotaViolation streak longer than the throttle window rejects with QUOTA_EXHAUSTED", async () => {
    await atNoon(async (midnight) => {
      const f = scripted([throttled(QUOTA_FAULT)]);
      const keap = patClient(f.fetch, {
        overrides: { throttle: { window: "1s" } },
        maxRetries: 100,
        random: () => 0,
      });
      const seen = events(keap, "throttled");
      const err = await keap.fetch("https://api.example/a").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeapQuotaExhaustedError);
      expect(err).toMatchObject({ code: "QUOTA_EXHAUSTED", policy: "quota", resetAtMs: midnight });
      expect(seen.at(0)?.cause).toBe("throttle");
      expect(seen.at(-1)).toMatchObject({ cause: "quota", retryInMs: undefined });
      // Later calls reject without sending.
      const sent = f.calls.length;
      await expect(keap.fetch("https://api.example/b")).rejects.toBeInstanceOf(
        KeapQuotaExhaustedError,
      );
      expect(f.calls).toHaveLength(sent);
      keap.close();
    });
  }, 20_000);

  it("the bare body with blank headers: spike, then unknown at the slowest pacing, then QUOTA_EXHAUSTED", async () => {
    const f = scripted([throttled(BARE, BLANK)]);
    const keap = patClient(f.fetch, {
      overrides: {
        spike: { refill: { tokens: 1, every: 2 } },
        throttle: { window: "2s" },
      },
      maxRetries: 100,
      random: () => 0,
    });
    const seen = events(keap, "throttled");
    const err = await keap.fetch("https://api.example/a").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "QUOTA_EXHAUSTED", policy: "quota" });
    const causes = [...new Set(seen.map((e) => e.cause))];
    expect(causes).toEqual(["spike", "unknown", "quota"]);
    // Unknown backs off from a second.
    expect(seen.find((e) => e.cause === "unknown")?.retryInMs).toBeGreaterThanOrEqual(500);
    keap.close();
  }, 20_000);
});

describe("what a throttled answer looks like", () => {
  it("reads MessageRate with a 6.5 s period as 25 per second", async () => {
    const f = scripted([
      throttled(spikeFault("messagesPerPeriod=25, periodInMicroseconds=6500000")),
      ok(),
    ]);
    const keap = createKeapClient({
      profile: "oauth",
      store: memoryStore(),
      identity: { app: "app-1" },
      fetch: f.fetch,
    });
    const pacing = events(keap, "pacing");
    await keap.fetch("https://api.example/a");
    // 25 per second is the nominal rate: 10% slower than the 44 ms start, not 286 ms.
    expect(pacing).toEqual([{ spacingMs: 48.4, reason: "spike" }]);
    keap.close();
  });

  it("honours a decimal Retry-After", async () => {
    const f = scripted([throttled(QUOTA_FAULT, { "retry-after": "1.5" }), ok()]);
    const keap = patClient(f.fetch);
    const seen = events(keap, "throttled");
    const ignored = events(keap, "headerIgnored");
    expect((await keap.fetch("https://api.example/a")).status).toBe(200);
    expect(seen[0]!.retryInMs).toBeGreaterThanOrEqual(1_500);
    expect(f.calls[1]!.at - f.calls[0]!.at).toBeGreaterThanOrEqual(1_490);
    expect(ignored).toEqual([]);
    keap.close();
  });

  it("retries a 500 whose body is an Apigee rate fault, and returns other 500s", async () => {
    const spike500 = () =>
      new Response(spikeFault("messagesPerPeriod=5, periodInMicroseconds=5000000"), {
        status: 500,
      });
    const f = scripted([spike500, ok()]);
    const keap = patClient(f.fetch);
    const seen = events(keap, "throttled");
    expect((await keap.fetch("https://api.example/a")).status).toBe(200);
    expect(seen).toMatchObject([{ cause: "spike", attempt: 1 }]);
    keap.close();

    const g = scripted([() => new Response('{"error":"boom"}', { status: 500 }), ok()]);
    const other = patClient(g.fetch);
    const res = await other.fetch("https://api.example/a");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "boom" });
    expect(g.calls).toHaveLength(1);
    other.close();
  });

  it("treats XML-RPC's HTTP 200 'Maximum number of threads throttled' as throttled, not success", async () => {
    const fault = `<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><i4>6</i4></value></member><member><name>faultString</name><value>Maximum number of threads throttled</value></member></struct></value></fault></methodResponse>`;
    const answer = `<?xml version="1.0"?><methodResponse><params><param><value><int>42</int></value></param></params></methodResponse>`;
    const xml = (body: string) => () =>
      new Response(body, { status: 200, headers: { "content-type": "text/xml" } });
    const f = scripted([xml(fault), xml(answer)]);
    const keap = createKeapClient({
      profile: "legacy",
      store: memoryStore(),
      identity: { app: "app-1" },
      fetch: f.fetch,
      random: () => 0,
    });
    const seen = events(keap, "throttled");
    const res = await keap.fetch("https://api.example/api/xmlrpc", {
      method: "POST",
      body: "<x/>",
    });
    expect(await res.text()).toBe(answer);
    expect(seen).toMatchObject([{ cause: "throttle", attempt: 1 }]);
    const d = await keap.limiter.peek(keap.key);
    expect(d.policies.find((p) => p.name === "pool")?.remaining).toBe(9_999); // refunded once
    keap.close();
  });
});

describe("options", () => {
  it("refuses an unknown option with a ConfigError naming it", () => {
    expect(() =>
      createKeapClient({
        profile: "pat",
        store: memoryStore(),
        identity: PAT,
        maxRetrys: 3,
      } as never),
    ).toThrow(/maxRetrys: unknown option \(did you mean "maxRetries"\?\)/);
  });
});
