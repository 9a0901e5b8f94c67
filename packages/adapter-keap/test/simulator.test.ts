import { ConfigError } from "@sluice/core";
import { afterEach, describe, expect, it } from "vitest";
import { type KeapSimulator, startKeapSimulator } from "../src/simulator/index.js";

const DAY = 86_400_000;
let sim: KeapSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** A simulator on a settable clock; `at(ms)` moves it. */
async function simulator(options: Parameters<typeof startKeapSimulator>[0] = {}) {
  let now = Date.UTC(2026, 1, 18, 23, 0, 0);
  sim = await startKeapSimulator({ clock: () => now, ...options });
  const call = async (token = "pat-1") => {
    const res = await fetch(`${sim!.url}/crm/rest/v2/contacts`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    advance: (ms: number) => {
      now += ms;
    },
    set: (ms: number) => {
      now = ms;
    },
    now: () => now,
  };
}

describe("Keap simulator", () => {
  it("sliding (default): a synchronized second admits the rate plus 10%, answered with the bare body", async () => {
    const s = await simulator({ profile: "oauth" });
    // 25 per second plus a burst of 2: 27 back to back, the 28th refused.
    for (let i = 0; i < 27; i++) expect((await s.call("app-1")).status).toBe(200);
    const refused = await s.call("app-1");
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      code: "429",
      message: "Quota Exceeded",
      status: "Request Throttled",
      details: null,
    });
    s.advance(999);
    expect((await s.call("app-1")).status).toBe(429);
    s.advance(1); // the first 27 leave the second
    expect((await s.call("app-1")).status).toBe(200);
    // Spike arrest is per app: another app is not affected.
    expect((await s.call("app-2")).status).toBe(200);
    expect(sim!.stats()).toMatchObject({ throttled: 2, byCause: { spike: 2 } });
  });

  it("bucket: one request per 1/rate, burst of one, the 2022 fault as an option", async () => {
    const s = await simulator({ profile: "pat", spikeModel: "bucket", bodies: "2022" });
    expect((await s.call()).status).toBe(200);
    s.advance(100); // half of 200 ms
    const refused = await s.call();
    expect(refused.status).toBe(429);
    expect(refused.body.fault.detail.errorcode).toBe("policies.ratelimit.SpikeArrestViolation");
    expect(refused.body.fault.faultstring).toContain(
      "MessageRate{messagesPerPeriod=5, periodInMicroseconds=5000000, maxBurstMessageCount=1.0}",
    );
    s.advance(100);
    expect((await s.call()).status).toBe(200);
    s.advance(10_000); // a quiet period does not store up a burst
    expect((await s.call()).status).toBe(200);
    expect((await s.call()).status).toBe(429);
    expect((await s.call("pat-2")).status).toBe(200);
    expect(sim!.stats()).toMatchObject({ served: 4, throttled: 2, byCause: { spike: 2 } });
  });

  it("perProcessor: the rate split over processors, each a bucket of one, routed round robin or at random", async () => {
    // 5 per second over 5 processors: each admits one per second.
    const s = await simulator({
      profile: "pat",
      spikeModel: "perProcessor",
      routing: "roundRobin",
    });
    for (let i = 0; i < 5; i++) expect((await s.call()).status).toBe(200); // one to each
    expect((await s.call()).status).toBe(429); // back to the first, too soon
    s.advance(1_000);
    expect((await s.call()).status).toBe(200);
    await sim!.close();

    // Random routing: two requests 300 ms apart (under a third of the rate) meet on one processor.
    const r = await simulator({
      profile: "pat",
      spikeModel: "perProcessor",
      random: () => 0.1,
    });
    expect((await r.call()).status).toBe(200);
    r.advance(300);
    expect((await r.call()).status).toBe(429);
  });

  it("stamps each request's arrival up to jitterMs late, as a network would", async () => {
    // Two requests sent at the same instant, 25 per second (one per 40 ms), burst of one: the
    // second arrives 49.5 ms after the first and is admitted.
    const jitter = [0, 0.99];
    let i = 0;
    const s = await simulator({
      profile: "oauth",
      spikeModel: "bucket",
      jitterMs: 50,
      random: () => jitter[i++ % 2]!,
    });
    expect((await s.call("app-1")).status).toBe(200);
    expect((await s.call("app-1")).status).toBe(200);
    await sim!.close();
    const still = await simulator({ profile: "oauth", spikeModel: "bucket" });
    expect((await still.call("app-1")).status).toBe(200);
    expect((await still.call("app-1")).status).toBe(429);
  });

  it("counts a rolling minute per tenant and answers with the quota fault (2022 bodies)", async () => {
    const s = await simulator({ profile: "pat", limits: { throttle: 3 }, bodies: "2022" });
    for (let i = 0; i < 3; i++) {
      expect((await s.call(`pat-${i}`)).status).toBe(200); // every key of the tenant counts
      s.advance(1_000);
    }
    const refused = await s.call();
    expect(refused.status).toBe(429);
    expect(refused.body.fault.detail.errorcode).toBe("policies.ratelimit.QuotaViolation");
    expect(refused.headers.get("x-keap-product-throttle-available")).toBe("0");
    s.advance(57_001); // the first request leaves the window at 60 s
    expect((await s.call()).status).toBe(200);
    expect(sim!.stats().byCause.throttle).toBe(1);
  });

  it("resets the daily quota at 00:00 UTC, with quotaUsed already consumed", async () => {
    const s = await simulator({
      profile: "pat",
      limits: { quota: 10 },
      quotaUsed: 9,
      retryAfter: true,
    });
    const first = await s.call();
    expect(first.status).toBe(200);
    expect(first.headers.get("x-keap-product-quota-available")).toBe("0");
    expect(first.headers.get("x-keap-product-quota-used")).toBe("10");
    const midnight = Date.UTC(2026, 1, 19);
    expect(first.headers.get("x-keap-product-quota-expiry-time")).toBe(String(midnight));
    s.advance(1_000);
    const refused = await s.call();
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      code: "429",
      message: "Quota Exceeded",
      status: "Request Throttled",
      details: null,
    });
    expect(Number(refused.headers.get("retry-after"))).toBe(Math.ceil((midnight - s.now()) / 1000));
    s.set(midnight);
    const next = await s.call();
    expect(next.status).toBe(200);
    expect(next.headers.get("x-keap-product-quota-used")).toBe("1");
    expect(next.headers.get("x-keap-product-quota-expiry-time")).toBe(String(midnight + DAY));
  });

  it("reports tenant windows pipe-separated, as one window, or not at all", async () => {
    const both = await simulator({ profile: "pat", limits: { tenantMinute: 2, tenantDay: 100 } });
    const r = await both.call();
    expect(r.headers.get("x-keap-tenant-throttle-limit")).toBe("2|100");
    expect(r.headers.get("x-keap-tenant-throttle-time-unit")).toBe("minute|day");
    expect(r.headers.get("x-keap-tenant-throttle-available")).toBe("1|99");
    expect(r.headers.get("x-keap-tenant-id")).toBe("sim.infusionsoft.com");
    both.advance(1_000);
    expect((await both.call("pat-2")).status).toBe(200);
    both.advance(1_000);
    // The tenant minute is shared by every key of the tenant.
    const refused = await both.call("pat-3");
    expect(refused.status).toBe(429);
    expect(refused.body.message).toBe("Quota Exceeded");
    expect(sim!.stats().byCause.tenant).toBe(1);
    await sim!.close();

    const one = await simulator({ profile: "pat", tenantHeaders: "minute" });
    const m = await one.call();
    expect(m.headers.get("x-keap-tenant-throttle-limit")).toBe("10000");
    expect(m.headers.get("x-keap-tenant-throttle-time-unit")).toBe("minute");
    await sim!.close();

    const none = await simulator({ profile: "oauth", tenantHeaders: "none" });
    const n = await none.call("app-1");
    expect(n.headers.get("x-keap-tenant-throttle-limit")).toBeNull();
    expect(n.headers.get("x-keap-product-throttle-limit")).toBe("1500");
    expect(n.headers.get("x-keap-product-quota-limit")).toBe("150000");
  });

  it("takes X-Keap-API-Key, a larger burst, tenantDayUsed and a response delay", async () => {
    const s = await simulator({
      profile: "sak",
      spikeModel: "bucket",
      spikeBurst: 2,
      limits: { tenantDay: 10 },
      tenantDayUsed: 8,
      latencyMs: 50,
    });
    const call = async () => {
      const t0 = Date.now();
      const res = await fetch(sim!.url, { headers: { "X-Keap-API-Key": "sak-1" } });
      await res.text();
      return {
        status: res.status,
        ms: Date.now() - t0,
        left: res.headers.get("x-keap-tenant-throttle-available"),
      };
    };
    const first = await call();
    expect(first.status).toBe(200);
    expect(first.ms).toBeGreaterThanOrEqual(45);
    expect(first.left).toBe("9999|1");
    expect((await call()).status).toBe(200); // the second of a burst of two, same instant
    s.advance(1_000);
    expect((await call()).status).toBe(429); // the tenant day is spent
    expect(sim!.stats()).toMatchObject({ served: 2, throttled: 1, byCause: { tenant: 1 } });
  });

  it("answers 401 with blank rate-limit headers when no credential is sent", async () => {
    await simulator();
    const res = await fetch(`${sim!.url}/crm/rest/v2/contacts`);
    expect(res.status).toBe(401);
    expect(res.headers.get("x-keap-product-quota-limit")).toBe("");
    expect(sim!.stats().unauthorized).toBe(1);
    sim!.reset();
    expect(sim!.stats()).toEqual({
      served: 0,
      throttled: 0,
      byCause: { spike: 0, throttle: 0, quota: 0, tenant: 0 },
      unauthorized: 0,
    });
  });

  it("refuses bad and unknown options with a ConfigError naming the field", async () => {
    const refused = async (options: unknown, path: string) => {
      const err = await startKeapSimulator(options as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.path)).toEqual([path]);
      return err as ConfigError;
    };
    await refused({ profile: "soap" }, "profile");
    await refused({ limits: { throttle: -1 } }, "limits.throttle");
    const typo = await refused({ limits: { spikes: 1 } }, "limits.spikes");
    expect(typo.message).toContain('did you mean "spike"');
    await refused({ processors: 0 }, "processors");
    await refused({ quotaUsed: 1.5 }, "quotaUsed");
    await refused({ spikeModel: "leaky" }, "spikeModel");
    await refused({ routing: "sticky" }, "routing");
    await refused({ jitterMs: -1 }, "jitterMs");
    await refused({ bodies: "2020" }, "bodies");
    expect((await refused({ skewMs: 2 }, "skewMs")).message).toContain("unknown option");
  });
});
