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
  sim = await startKeapSimulator({ clock: () => now, skewMs: 0, ...options });
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
  it("smooths the spike rate: one request per 1/rate, burst of one, with the fault of docs/keap.md", async () => {
    const s = await simulator({ profile: "pat", processors: 5 });
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
    // Spike arrest is per token: another key is not affected.
    expect((await s.call("pat-2")).status).toBe(200);
    expect(sim!.stats()).toMatchObject({ served: 4, throttled: 2, byCause: { spike: 2 } });
  });

  it("refuses a request sent exactly one interval later on a processor whose clock runs ahead", async () => {
    // Two processors, the second 20 ms behind the first: routing decides.
    const order = [0, 0.99, 0.99, 0.0];
    let i = 0;
    const s = await simulator({
      profile: "pat",
      processors: 2,
      skewMs: 20,
      random: () => order[i++ % order.length]!,
    });
    // offsets drawn first: processor 0 -> 0 ms, processor 1 -> 19.8 ms
    expect((await s.call()).status).toBe(200); // processor 1 (0.99)
    s.advance(200);
    expect((await s.call()).status).toBe(429); // processor 0: 200 - 19.8 ms after, too soon
  });

  it("counts a rolling minute per token and answers with the quota fault", async () => {
    const s = await simulator({ profile: "pat", limits: { throttle: 3 } });
    for (let i = 0; i < 3; i++) {
      expect((await s.call()).status).toBe(200);
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
    expect(m.headers.get("x-keap-tenant-throttle-limit")).toBe("5000");
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
    expect(first.left).toBe("4999|1");
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

  it("refuses bad options with the option's name", async () => {
    await expect(startKeapSimulator({ profile: "soap" as never })).rejects.toThrow(/profile/);
    await expect(startKeapSimulator({ limits: { throttle: -1 } })).rejects.toThrow(
      /limits\.throttle/,
    );
    await expect(startKeapSimulator({ limits: { spikes: 1 } as never })).rejects.toThrow(/spikes/);
    await expect(startKeapSimulator({ processors: 0 })).rejects.toThrow(/processors/);
    await expect(startKeapSimulator({ quotaUsed: 1.5 })).rejects.toThrow(/quotaUsed/);
  });
});
