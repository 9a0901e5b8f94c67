import { setMaxListeners } from "node:events";
import { ConfigError, SluiceError } from "@sluice/core";
import { memoryStore } from "@sluice/store-memory";
import { redisStore } from "@sluice/store-redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createKeapClient, type KeapClient, KeapQuotaExhaustedError } from "../src/index.js";
import { type KeapSimulator, startKeapSimulator } from "../src/simulator/index.js";
import {
  atNoon,
  BARE,
  blockFor,
  events,
  localServer,
  ok,
  PAT,
  patClient,
  SPIKE_FAULT,
  scripted,
  spyHolds,
  throttled,
} from "./helpers.js";

let sim: KeapSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("keap.fetch against the simulator", () => {
  it("16 workers get no 429 and at least 95% of what the limits allow", async () => {
    sim = await startKeapSimulator({ profile: "pat", limits: { throttle: 10 }, jitterMs: 2 });
    const keap = createKeapClient({ profile: "pat", store: memoryStore(), identity: PAT });
    const stop = AbortSignal.timeout(3_000);
    setMaxListeners(100, stop);
    let statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!stop.aborted) {
          const res = await keap
            .fetch(`${sim!.url}/crm/rest/v2/contacts`, {
              headers: { authorization: "Bearer pat-1" },
              signal: stop,
            })
            .catch(() => undefined);
          if (res) statuses = [...statuses, res.status];
        }
      }),
    );
    keap.close();
    // 5/s paced at 220 ms would send 13 in 3 s: the 10 per minute binds, and all 10 go out.
    expect(sim.stats().throttled).toBe(0);
    expect(statuses.filter((s) => s === 429)).toEqual([]);
    expect(sim.stats().served).toBe(10);
  });

  it("reconciles every response: remaining lowered, the server's limits learned", async () => {
    sim = await startKeapSimulator({
      profile: "pat",
      limits: { throttle: 100, quota: 50 },
      quotaUsed: 20,
      tenantHeaders: "minute",
    });
    const keap = createKeapClient({ profile: "pat", store: memoryStore(), identity: PAT });
    const res = await keap.fetch(sim.url, { headers: { authorization: "Bearer pat-1" } });
    expect(res.status).toBe(200);
    const d = await keap.limiter.peek(keap.key);
    const by = Object.fromEntries(d.policies.map((p) => [p.name, p]));
    expect(by.throttle).toMatchObject({ limit: 100, remaining: 99 });
    expect(by.quota).toMatchObject({ limit: 50, remaining: 29 });
    expect(by.tenantMinute).toMatchObject({ limit: 10_000, remaining: 9_999 });
    expect(by.tenantDay).toMatchObject({ limit: 250_000, remaining: 249_999 }); // not reported
    keap.close();
  });

  it("rejects with QUOTA_EXHAUSTED without sending once the daily quota is gone", async () => {
    await atNoon(async (midnight) => {
      sim = await startKeapSimulator({ profile: "pat", limits: { quota: 5 }, quotaUsed: 4 });
      const keap = createKeapClient({
        profile: "pat",
        store: memoryStore(),
        identity: PAT,
        maxWaitMs: 10_000,
      });
      const init = { headers: { authorization: "Bearer pat-1" } };
      expect((await keap.fetch(sim.url, init)).status).toBe(200);
      const err = await keap.fetch(sim.url, init).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeapQuotaExhaustedError);
      expect(err).toMatchObject({ code: "QUOTA_EXHAUSTED", policy: "quota", retryable: true });
      expect((err as KeapQuotaExhaustedError).resetAtMs).toBe(midnight);
      expect(sim.stats()).toMatchObject({ served: 1, throttled: 0 });
      keap.close();
    });
  });
});

describe("keap.fetch on 429", () => {
  it("retries a spike 429, slows pacing to the fault's rate, refunds counted charges but not the spike", async () => {
    const f = scripted([throttled(SPIKE_FAULT), ok()]);
    const keap = patClient(f.fetch, { random: () => 0 });
    const pacing = events(keap, "pacing");
    const seen = events(keap, "throttled");
    const res = await keap.fetch("https://api.example/contacts");
    expect(res.status).toBe(200);
    expect(f.calls).toHaveLength(2);
    // MessageRate 2 per 5 s: 2 per second (the period is processors x 1 s), paced 10% below.
    expect(pacing).toEqual([{ spacingMs: 550, reason: "spike" }]);
    expect(f.calls[1]!.at - f.calls[0]!.at).toBeGreaterThanOrEqual(540);
    expect(seen[0]).toMatchObject({ cause: "spike", attempt: 1 });
    const d = await keap.limiter.peek(keap.key);
    const by = Object.fromEntries(d.policies.map((p) => [p.name, p.remaining]));
    expect(by.throttle).toBe(239); // two sent, the refused one given back
    expect(by.quota).toBe(29_999);
    expect(by.spike).toBe(0); // the spike slot stays spent
    expect(keap.policies.find((p) => p.name === "spike")).toMatchObject({
      refill: { tokens: 1000, every: 550_000 },
    });
    keap.close();
  });

  it("gives back the counted charges of a 429 on a Redis store too", async () => {
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
      maxRetriesPerRequest: 1,
    });
    try {
      const f = scripted([throttled(SPIKE_FAULT), ok()]);
      const keap = patClient(f.fetch, {
        store: redisStore({ client: redis }),
        prefix: `keap-test-${process.pid}-${Date.now()}`,
        random: () => 0,
      });
      expect((await keap.fetch("https://api.example/contacts")).status).toBe(200);
      const d = await keap.limiter.peek(keap.key);
      const by = Object.fromEntries(d.policies.map((p) => [p.name, p.remaining]));
      expect(by).toMatchObject({ spike: 0, throttle: 239, quota: 29_999, tenantMinute: 9_999 });
      keap.close();
    } finally {
      redis.disconnect();
    }
  });

  it("retries a spike 429 the same when the shared store's clock is hours off ours", async () => {
    for (const skewMs of [5 * 3_600_000, -5 * 3_600_000]) {
      // A store on another host (only its clock is faked): hours ahead of this process, or behind.
      const inner = memoryStore({ clock: () => Date.now() + skewMs });
      const store = {
        capabilities: { ...inner.capabilities, local: false },
        execute: (request: Parameters<typeof inner.execute>[0]) =>
          Promise.resolve(inner.execute(request)),
      };
      const f = scripted([throttled(SPIKE_FAULT), ok(), ok()]);
      const keap = patClient(f.fetch, { store, random: () => 0 });
      expect((await keap.fetch("https://api.example/contacts")).status).toBe(200);
      expect((await keap.fetch("https://api.example/contacts")).status).toBe(200);
      // Spaced by the slowed pacing (550 ms), not by the clocks' difference.
      expect(f.calls[2]!.at - f.calls[1]!.at).toBeGreaterThanOrEqual(540);
      expect(f.calls[2]!.at - f.calls[1]!.at).toBeLessThan(2_000);
      const d = await keap.limiter.peek(keap.key);
      const by = Object.fromEntries(d.policies.map((p) => [p.name, p.remaining]));
      expect(by).toMatchObject({ throttle: 238, quota: 29_998 });
      keap.close();
    }
  });

  it("paces OAuth sends by the slot a skewed shared store hands out, not by its clock", async () => {
    const gaps: Record<string, number> = {};
    for (const skewMs of [0, -5 * 3_600_000]) {
      const inner = memoryStore({ clock: () => Date.now() + skewMs });
      const store = {
        capabilities: { ...inner.capabilities, local: false },
        execute: (request: Parameters<typeof inner.execute>[0]) =>
          Promise.resolve(inner.execute(request)),
      };
      const f = scripted([throttled(BARE), ...Array.from({ length: 24 }, () => ok())]);
      const keap = createKeapClient({
        profile: "oauth",
        store,
        prefix: `keap-skew-${process.pid}-${skewMs}`,
        identity: { app: "app-1" },
        fetch: f.fetch,
        random: () => 0,
      });
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 6; i++) await keap.fetch("https://api.example/contacts");
        }),
      );
      const at = f.calls.map((c) => c.at);
      gaps[skewMs] = (at[at.length - 1]! - at[2]!) / (at.length - 3);
      keap.close();
    }
    // A store hours behind must not make every admission look late (each then waits a slot more).
    expect(gaps[-5 * 3_600_000]).toBeLessThan(gaps[0]! * 1.5);
  });

  it("slows down by 10% on a spike 429 without a MessageRate", async () => {
    const f = scripted([throttled(BARE), ok()]);
    const keap = patClient(f.fetch);
    const pacing = events(keap, "pacing");
    await keap.fetch("https://api.example/contacts");
    expect(pacing).toEqual([{ spacingMs: 242, reason: "spike" }]); // 220 ms x 1.1
    expect(keap.stats()).toMatchObject({ sent: 2, throttled: 1, returned: 0, spacingMs: 242 });
    keap.close();
  });

  it("slows down once for two spike 429s when the second request was admitted before the slow-down", async () => {
    // Giving back a refused request's charges takes 400 ms (a store far away, or busy): its
    // slow-down comes that long after its answer.
    const inner = memoryStore();
    const store = {
      capabilities: { ...inner.capabilities, local: false },
      execute: async (request: Parameters<typeof inner.execute>[0]) => {
        if (request.op === "refund") await new Promise((r) => setTimeout(r, 400));
        return inner.execute(request);
      },
    };
    // The first request is refused 190 ms after it leaves. The second, admitted one interval
    // after that answer (the first request was cold), so before the slow-down, is refused too: it
    // was paced as fast as the first, and its 429 says nothing new.
    let sent = 0;
    const fetch = (async () => {
      const n = ++sent;
      if (n === 1) await new Promise((r) => setTimeout(r, 190));
      return (n <= 2 ? throttled(BARE) : ok())();
    }) as typeof globalThis.fetch;
    const keap = patClient(fetch, { store, random: () => 0 });
    const pacing = events(keap, "pacing");
    await Promise.all([keap.fetch("https://api.example/a"), keap.fetch("https://api.example/b")]);
    // One event, one slow-down: 220 ms x 1.1, not x 1.21.
    expect(pacing).toEqual([{ spacingMs: 242, reason: "spike" }]);
    expect(keap.stats()).toMatchObject({ throttled: 2 });
    keap.close();
  }, 10_000);

  it("speeds spike pacing up 0.5% per 2 s without a spike 429", async () => {
    const f = scripted([throttled(BARE), ok()]);
    const keap = patClient(f.fetch);
    const pacing = events(keap, "pacing");
    const until = Date.now() + 2_300;
    while (Date.now() < until) await keap.fetch("https://api.example/contacts");
    expect(pacing[0]).toEqual({ spacingMs: 242, reason: "spike" });
    expect(pacing[1]).toEqual({ spacingMs: 240.79, reason: "recovered" });
    expect(keap.stats().spacingMs).toBe(240.79);
    keap.close();
  }, 15_000);

  it("holds the next spike slot until one interval after a cold request's answer, and after one that leaves late", async () => {
    let t = 1_000_000;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => t);
    // The monotonic clock moves with the wall clock (sends are timed on both).
    const monotonic = vi.spyOn(performance, "now").mockImplementation(() => t - 990_000);
    try {
      // The first (cold) request is answered 30 ms after it leaves, the others at once.
      let sent = 0;
      const fetch = (async () => {
        if (sent++ === 0) t += 30;
        return new Response("{}", { status: 200 });
      }) as typeof globalThis.fetch;
      const keap = patClient(fetch, { store: memoryStore({ clock: () => t }) });
      const spikeLeft = async () =>
        (await keap.limiter.peek(keap.key)).policies.find((p) => p.name === "spike")!.remaining;
      await keap.fetch("https://api.example/a"); // cold: next slot one interval after its answer
      await new Promise((r) => setImmediate(r));
      t += 219;
      expect(await spikeLeft()).toBe(0);
      t += 1;
      expect(await spikeLeft()).toBe(1);
      await keap.fetch("https://api.example/b"); // warm, on time: no hold
      t += 220;
      expect(await spikeLeft()).toBe(1);
      await keap.fetch("https://api.example/c");
      // Admitted 10 ms before it leaves: the next slot is one interval after it leaves.
      (keap as unknown as { holdSpikeIfLate(at: number, offset: number): void }).holdSpikeIfLate(
        t - 10,
        0,
      );
      await new Promise((r) => setImmediate(r));
      t += 219;
      expect(await spikeLeft()).toBe(0);
      t += 1;
      expect(await spikeLeft()).toBe(1);
      keap.close();
    } finally {
      clock.mockRestore();
      monotonic.mockRestore();
    }
  });

  /**
   * Two PAT clients on one store (two processes): the first sends `warm` requests answered after
   * `usualMs`, then one answered only after `answerMs` (cold when `warm` is 0); once that one has
   * left, the second client sends its first. Resolves with how long after the slow request the
   * second client's left.
   */
  async function secondSendAfterSlow(
    answerMs: number,
    { warm = 0, usualMs = 0 } = {},
  ): Promise<number> {
    const store = memoryStore();
    const sends: number[] = [];
    let slowNext = false;
    let slowSent = () => {};
    const slowSending = new Promise<void>((r) => {
      slowSent = r;
    });
    const first = (async () => {
      if (slowNext) {
        slowNext = false;
        sends.push(performance.now());
        slowSent();
        await new Promise((r) => setTimeout(r, answerMs));
      } else if (usualMs > 0) {
        await new Promise((r) => setTimeout(r, usualMs));
      }
      return ok()();
    }) as typeof globalThis.fetch;
    const second = (async () => {
      sends.push(performance.now());
      return ok()();
    }) as typeof globalThis.fetch;
    const a = patClient(first, { store });
    const b = patClient(second, { store });
    for (let n = 0; n < warm; n++) await a.fetch("https://api.example/warm");
    slowNext = true;
    const slow = a.fetch("https://api.example/a");
    await slowSending;
    await b.fetch("https://api.example/b");
    await slow;
    a.close();
    b.close();
    return sends[1]! - sends[0]!;
  }

  it("keeps the next slot one interval ahead while a cold request is on its way, for every process", async () => {
    // Answered 600 ms after it left: no other process sends before 600 + 220 ms.
    expect(await secondSendAfterSlow(600)).toBeGreaterThanOrEqual(600 + 220 - 2);
  });

  it("lets the next slot come once a cold request has gone a second unanswered", async () => {
    // A hung request holds the others back for COLD_HOLD_MAX_MS (1 s) and one interval, not more.
    expect(await secondSendAfterSlow(1_600)).toBeLessThan(1_000 + 2 * 220 + 100);
  });

  it("holds the next slot, for every process, while a request is overdue far past its usual round trip", async () => {
    // Round trips under a ms, then one answered after 600 ms: nothing else leaves before 600 + 220.
    expect(await secondSendAfterSlow(600, { warm: 9 })).toBeGreaterThanOrEqual(600 + 220 - 2);
  }, 10_000);

  it("holds the next slot for an overdue request for a second at most", async () => {
    expect(await secondSendAfterSlow(1_600, { warm: 9 })).toBeLessThan(1_000 + 2 * 220 + 100);
  }, 10_000);

  it("holds nothing for an overdue request where round trips are too long to tell it in time", async () => {
    // Round trips of 30 ms: overdue after 120 ms, past half an interval (110 ms). The next request
    // would have left already, and a slow answer would only hold the others back.
    expect(await secondSendAfterSlow(600, { warm: 9, usualMs: 30 })).toBeLessThan(220 + 100);
  }, 10_000);

  it("holds the next spike slot after a request delayed on its way, before any spike 429", async () => {
    // Round trips of 1 ms, then one of 30 ms: the third request met 29 ms of delay.
    await afterThirdRequest([1, 1, 30], [1, 1, 30], async (spikeLeftAt, keap) => {
      // Not one interval (220 ms) after its slot, nor one after its answer (250 ms), but one
      // after it reached Keap (slot + 29 ms).
      expect(await spikeLeftAt(248)).toBe(0);
      expect(await spikeLeftAt(249)).toBe(1);
      expect(keap.stats().throttled).toBe(0);
    });
  });

  it("does not take a step of the wall clock during a request for delay on its way", async () => {
    // Every round trip takes 1 ms; during the third the wall clock steps 29 ms ahead (a time
    // sync). Timed on the wall clock, that round trip would look 29 ms late.
    await afterThirdRequest([1, 1, 30], [1, 1, 1], async (spikeLeftAt) => {
      // No hold: the next slot is one interval after this one's.
      expect(await spikeLeftAt(220)).toBe(1);
    });
  });

  /**
   * How many holds a PAT client places around its third request, which meets 15 ms of delay on its
   * way (round trips otherwise well under a ms); the first request is answered by `first`.
   */
  async function holdsAroundDelayedRequest(first: () => Response): Promise<number> {
    let sent = 0;
    let delayMs = 0;
    const fetch = (async () => {
      sent++;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return (sent === 1 ? first : ok())();
    }) as typeof globalThis.fetch;
    const keap = patClient(fetch, { random: () => 0 });
    const holds = spyHolds(keap);
    await keap.fetch("https://api.example/a"); // cold; a 429 is retried
    await keap.fetch("https://api.example/b");
    holds.mockClear();
    delayMs = 15;
    await keap.fetch("https://api.example/c");
    keap.close();
    return holds.mock.calls.length;
  }

  it("holds the next slot after a delayed request while no spike 429 has been seen", async () => {
    expect(await holdsAroundDelayedRequest(ok())).toBe(1);
  });

  it("after a spike 429, holds no slot for a delay that leaves more than the spacing that drew it", async () => {
    // The 429 came at 220 ms and slowed pacing to 242: 15 ms late, the request still reaches Keap
    // 227 ms before the next one, more than the gap the gateway refused. A hold would cost 15 ms.
    expect(await holdsAroundDelayedRequest(throttled(BARE))).toBe(0);
  });

  /**
   * A PAT client sends four requests with Node's fetch to a local server; during the fourth the
   * process is busy for 20 ms at `when`. Resolves with how far past one interval (220 ms) after
   * that request left the next spike slot was held (ms; 0 without a hold).
   */
  async function holdPastInterval(when: "before it goes out" | "after its answer") {
    const server = await localServer();
    let sent = 0;
    let leftAtMs = 0;
    const fetchImpl = (async (input, init) => {
      const busy = ++sent === 4;
      leftAtMs = Date.now();
      if (busy && when === "before it goes out") blockFor(20);
      const res = await fetch(input, init);
      if (busy && when === "after its answer") blockFor(20);
      return res;
    }) as typeof globalThis.fetch;
    const keap = patClient(fetchImpl, { random: () => 0 });
    const holds = spyHolds(keap);
    try {
      for (let i = 0; i < 3; i++) await (await keap.fetch(server.url)).text();
      holds.mockClear();
      await (await keap.fetch(server.url)).text();
      const held = holds.mock.calls.map(([atMs]) => atMs - (leftAtMs + 220));
      return Math.max(0, ...held);
    } finally {
      keap.close();
      await server.close();
    }
  }

  it("holds the next slot for delay in this process before a request goes out", async () => {
    expect(await holdPastInterval("before it goes out")).toBeGreaterThanOrEqual(18);
  });

  it("holds no slot for delay after the answer came in, though the round trip shows it", async () => {
    // Only the usual noise of a loopback round trip, if anything.
    expect(await holdPastInterval("after its answer")).toBeLessThan(10);
  });

  it("leaves a steady offset after its spike slot from the first request on", async () => {
    const t = 1_000_000;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => t);
    const monotonic = vi.spyOn(performance, "now").mockImplementation(() => t - 990_000);
    try {
      const keap = patClient(scripted([ok()]).fetch);
      const sendOffset = (slotAtMs: number) =>
        (
          keap as unknown as {
            keepSendOffset(at: number, signal: AbortSignal | undefined): Promise<number>;
          }
        ).keepSendOffset(slotAtMs, undefined);
      // No spike 429 yet; every slot reached the client 3 ms after it came.
      for (let i = 0; i < 4; i++) await sendOffset(t - 3);
      expect(await sendOffset(t - 3)).toBe(3);
      keap.close();
    } finally {
      clock.mockRestore();
      monotonic.mockRestore();
    }
  });

  it("tells tenant windows and unknown 429s apart, and backs off from 1 s on an unknown one", async () => {
    const tenantDay = throttled(BARE, {
      "x-keap-tenant-throttle-limit": "10000|250000",
      "x-keap-tenant-throttle-time-unit": "minute|day",
      "x-keap-tenant-throttle-interval": "1|1",
      "x-keap-tenant-throttle-available": "9000|0",
    });
    const f = scripted([tenantDay]);
    const keap = createKeapClient({
      profile: "sak",
      store: memoryStore(),
      identity: PAT,
      fetch: f.fetch,
    });
    const seen = events(keap, "throttled");
    await expect(keap.fetch("https://api.example/a")).rejects.toMatchObject({
      code: "QUOTA_EXHAUSTED",
      policy: "tenantDay",
    });
    expect(seen[0]!.cause).toBe("tenantDay");
    keap.close();

    const g = scripted([throttled("<html>Too Many Requests</html>"), ok()]);
    const other = createKeapClient({
      profile: "legacy",
      store: memoryStore(),
      identity: { app: "app-1" },
      fetch: g.fetch,
      random: () => 0,
    });
    const seenOther = events(other, "throttled");
    expect((await other.fetch("https://api.example/a")).status).toBe(200);
    expect(seenOther[0]).toMatchObject({ cause: "unknown", retryInMs: 500 });
    expect(g.calls[1]!.at - g.calls[0]!.at).toBeGreaterThanOrEqual(490);
    const d = await other.limiter.peek(other.key);
    expect(d.policies.find((p) => p.name === "pool")?.remaining).toBe(9_999); // 429 given back
    other.close();
  });

  it("resolves with the last 429, body intact, when retries run out", async () => {
    const f = scripted([throttled(SPIKE_FAULT)]);
    const keap = createKeapClient({
      profile: "oauth",
      store: memoryStore(),
      identity: { app: "app-1" },
      fetch: f.fetch,
      maxRetries: 2,
      random: () => 0,
    });
    const seen = events(keap, "throttled");
    const res = await keap.fetch("https://api.example/contacts");
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({
      fault: { detail: { errorcode: expect.any(String) } },
    });
    expect(f.calls).toHaveLength(3);
    expect(seen.map((e) => e.retryInMs === undefined)).toEqual([false, false, true]);
    keap.close();
  });

  it("honours Retry-After and never waits past maxWaitMs in total", async () => {
    const quotaFault = JSON.stringify({
      fault: {
        faultstring: "Rate limit quota violation. Quota limit exceeded. Identifier : x",
        detail: { errorcode: "policies.ratelimit.QuotaViolation" },
      },
    });
    const f = scripted([throttled(quotaFault, { "retry-after": "1" }), ok()]);
    const keap = patClient(f.fetch);
    const seen = events(keap, "throttled");
    const t0 = Date.now();
    expect((await keap.fetch("https://api.example/a")).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    expect(seen[0]).toMatchObject({ cause: "throttle" });
    expect(seen[0]!.retryInMs).toBeGreaterThanOrEqual(1000);
    keap.close();

    const g = scripted([throttled(quotaFault, { "retry-after": "30" }), ok()]);
    const short = patClient(g.fetch, { maxWaitMs: 300 });
    const t1 = Date.now();
    const res = await short.fetch("https://api.example/a");
    expect(res.status).toBe(429);
    expect(Date.now() - t1).toBeLessThan(300);
    expect(g.calls).toHaveLength(1);
    short.close();
  });

  it("classifies a quota 429 by its headers and rejects when the reset is beyond maxWaitMs", async () => {
    const tomorrow = (Math.floor(Date.now() / 86_400_000) + 1) * 86_400_000;
    const f = scripted([
      throttled(BARE, {
        "x-keap-product-quota-limit": "30000",
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-time-unit": "day",
        "x-keap-product-quota-interval": "1",
        "x-keap-product-quota-expiry-time": String(tomorrow),
      }),
    ]);
    const keap = patClient(f.fetch);
    const seen = events(keap, "throttled");
    await expect(keap.fetch("https://api.example/a")).rejects.toMatchObject({
      code: "QUOTA_EXHAUSTED",
      policy: "quota",
      resetAtMs: tomorrow,
    });
    expect(seen).toMatchObject([{ cause: "quota", retryInMs: undefined }]);
    // Later calls reject without sending.
    await expect(keap.fetch("https://api.example/b")).rejects.toBeInstanceOf(
      KeapQuotaExhaustedError,
    );
    expect(f.calls).toHaveLength(1);
    keap.close();
  });

  it("does not retry a request whose body cannot be sent again", async () => {
    const f = scripted([throttled(BARE), ok()]);
    const keap = patClient(f.fetch);
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("{}"));
        c.close();
      },
    });
    const res = await keap.fetch("https://api.example/a", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(429);
    expect(f.calls).toHaveLength(1);
    keap.close();
  });
});

describe("keap.fetch input handling", () => {
  it("ignores malformed header values with an event, never throwing or corrupting state", async () => {
    const f = scripted([
      ok({
        "x-keap-product-throttle-limit": "-5",
        "x-keap-product-throttle-available": "lots",
        "x-keap-product-throttle-time-unit": "minute",
        "x-keap-product-throttle-interval": "1",
        "x-keap-product-quota-limit": "1e400",
        "x-keap-product-quota-available": "12",
        "x-keap-product-quota-time-unit": "day",
        "x-keap-product-quota-interval": "1",
      }),
    ]);
    const keap = patClient(f.fetch);
    const ignored = events(keap, "headerIgnored");
    expect((await keap.fetch("https://api.example/a")).status).toBe(200);
    expect(ignored.map((i) => i.header).sort()).toEqual([
      "x-keap-product-quota-limit",
      "x-keap-product-throttle-available",
      "x-keap-product-throttle-limit",
    ]);
    expect(ignored[0]!.url).toBe("https://api.example/a");
    const d = await keap.limiter.peek(keap.key);
    const by = Object.fromEntries(d.policies.map((p) => [p.name, p]));
    expect(by.throttle).toMatchObject({ limit: 240, remaining: 239 });
    expect(by.quota).toMatchObject({ limit: 30_000, remaining: 12 });
    keap.close();
  });

  it("rejects with WAIT_TIMEOUT, without sending, when capacity comes after the deadline", async () => {
    const f = scripted([
      ok({
        "x-keap-product-throttle-limit": "240",
        "x-keap-product-throttle-available": "0",
        "x-keap-product-throttle-time-unit": "minute",
        "x-keap-product-throttle-interval": "1",
      }),
    ]);
    const keap = patClient(f.fetch, { maxWaitMs: 200 });
    await keap.fetch("https://api.example/a");
    const t0 = Date.now();
    await expect(keap.fetch("https://api.example/b")).rejects.toMatchObject({
      code: "WAIT_TIMEOUT",
    });
    expect(Date.now() - t0).toBeLessThan(200);
    expect(f.calls).toHaveLength(1);
    keap.close();
  });

  it("honours init.signal while waiting for capacity", async () => {
    const f = scripted([ok()]);
    const keap = patClient(f.fetch);
    await keap.fetch("https://api.example/a");
    const ctl = new AbortController();
    const pending = keap.fetch("https://api.example/b", { signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error("stop")), 20);
    await expect(pending).rejects.toThrow("stop");
    expect(f.calls).toHaveLength(1);
    keap.close();
  });

  it("holds the org-daily-2500 concurrency limit while requests run", async () => {
    let running = 0;
    let most = 0;
    const slow = (async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 30));
      running--;
      return new Response("{}");
    }) as typeof fetch;
    const keap = createKeapClient({
      profile: "org-daily-2500",
      store: memoryStore(),
      identity: { tenant: "org-1" },
      fetch: slow,
      timeZone: "Australia/Sydney",
    });
    await Promise.all(Array.from({ length: 9 }, () => keap.fetch("https://forms.example/api")));
    expect(most).toBe(3);
    expect(keap.policies.find((p) => p.name === "daily")).toMatchObject({
      timeZone: "Australia/Sydney",
    });
    const d = await keap.limiter.peek(keap.key);
    expect(d.policies.find((p) => p.name === "daily")?.remaining).toBe(2_491);
    keap.close();
  });

  it("refuses bad options with coded errors that name the field", () => {
    const store = memoryStore();
    const make = (o: Record<string, unknown>) => () =>
      createKeapClient({ profile: "pat", store, identity: PAT, ...o } as never);
    expect(make({ identity: { tenant: "ab103" } })).toThrow(/identity\.token/);
    expect(make({ identity: { tenant: "ab103" } })).toThrow(SluiceError);
    expect(make({ profile: "soap" })).toThrow(/profile must be one of/);
    expect(make({ maxRetries: -1 })).toThrow(/maxRetries/);
    expect(make({ maxWaitMs: 1.5 })).toThrow(/maxWaitMs/);
    expect(make({ timeZone: "Europe/Paris" })).toThrow(/org-daily-2500/);
    expect(make({ store: {} })).toThrow(/store/);
    const caught = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const unknown = caught(
      make({ overrides: { nope: { limit: 1 }, quota: { limit: -3 } } }),
    ) as ConfigError;
    expect(unknown).toBeInstanceOf(ConfigError);
    expect(unknown.issues.map((i) => i.path)).toEqual(["overrides.nope"]);
    const invalid = caught(make({ overrides: { quota: { limit: -3 } } })) as ConfigError;
    expect(invalid.issues[0]!.path).toBe("overrides.quota.limit");
    expect(() =>
      createKeapClient({
        profile: "org-daily-2500",
        store,
        identity: { tenant: "o" },
        timeZone: "Mars/Olympus",
      }),
    ).toThrow(/timeZone/);
  });

  it("adds the legacy per-minute throttle once a response reports one", async () => {
    const f = scripted([
      ok(),
      ok({
        "x-keap-product-throttle-limit": "600",
        "x-keap-product-throttle-available": "590",
        "x-keap-product-throttle-time-unit": "minute",
        "x-keap-product-throttle-interval": "1",
      }),
    ]);
    const keap = createKeapClient({
      profile: "legacy",
      store: memoryStore(),
      identity: { app: "app-1" },
      fetch: f.fetch,
    });
    await keap.fetch("https://api.example/a");
    expect(keap.policies.map((p) => p.name)).toEqual(["pool", "spike"]);
    await keap.fetch("https://api.example/b");
    expect(keap.policies.map((p) => p.name)).toEqual(["pool", "spike", "throttle"]);
    const d = await keap.limiter.peek(keap.key);
    expect(d.policies.find((p) => p.name === "throttle")).toMatchObject({
      limit: 600,
      remaining: 590,
    });
    keap.close();
  });

  it("takes overrides by policy name and the keap: prefix on the profile", () => {
    const keap = createKeapClient({
      profile: "keap:oauth",
      store: memoryStore(),
      identity: { app: "app-1" },
      overrides: { quota: { limit: 50_000 } },
    });
    expect(keap.policies.map((p) => p.name)).toEqual(["spike", "throttle", "quota"]);
    expect(keap.policies[2]).toMatchObject({ limit: 50_000 });
    expect(keap.key).toEqual({ app: "app-1" });
    keap.close();
  });
});

/**
 * A PAT client on a memory store sends three requests: a cold one, one on time, then the one under
 * test. Each round trip moves the wall clock by `wallMs[i]` and the monotonic clock by
 * `monotonicMs[i]`. `check` reads the spike tokens left a given number of ms after the third
 * request's slot.
 */
async function afterThirdRequest(
  wallMs: number[],
  monotonicMs: number[],
  check: (spikeLeftAt: (ms: number) => Promise<number>, keap: KeapClient) => Promise<void>,
): Promise<void> {
  let t = 1_000_000;
  let mono = 0;
  const clock = vi.spyOn(Date, "now").mockImplementation(() => t);
  const monotonic = vi.spyOn(performance, "now").mockImplementation(() => mono);
  try {
    let sent = 0;
    const fetch = (async () => {
      t += wallMs[sent]!;
      mono += monotonicMs[sent]!;
      sent++;
      return new Response("{}", { status: 200 });
    }) as typeof globalThis.fetch;
    const keap = patClient(fetch, { store: memoryStore({ clock: () => t }) });
    const advance = (ms: number) => {
      t += ms;
      mono += ms;
    };
    await keap.fetch("https://api.example/a"); // cold: next slot 440 ms later
    advance(439);
    await keap.fetch("https://api.example/b"); // on time, 1 ms round trip: no hold
    advance(219);
    const slotAt = t;
    await keap.fetch("https://api.example/c");
    await new Promise((r) => setImmediate(r));
    await check(async (ms) => {
      t = slotAt + ms;
      return (await keap.limiter.peek(keap.key)).policies.find((p) => p.name === "spike")!
        .remaining;
    }, keap);
    keap.close();
  } finally {
    clock.mockRestore();
    monotonic.mockRestore();
  }
}
