import { request as httpRequest } from "node:http";
import { createLimiter, type Limiter, type Policy, type Store } from "@sluice/core";
import type { StoreRequest } from "@sluice/core/store";
import { rateLimit as fastifyRateLimit } from "@sluice/http/fastify";
import { memoryStore } from "@sluice/store-memory";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AnyOptions,
  eventually,
  FRAMEWORKS,
  limitHeaders,
  type RunningApp,
  startApp,
} from "./apps.js";

const burstAndDaily: Policy[] = [
  // Slow enough that no token comes back while a test runs, however loaded the machine.
  { kind: "tokenBucket", name: "burst", capacity: 10, refill: { tokens: 10, every: "1000s" } },
  { kind: "fixedWindow", name: "daily", limit: 1000, window: "1d" },
];

/** A memory store that counts the lease releases it receives. */
function countingStore() {
  const inner = memoryStore();
  let releases = 0;
  const store: Store = {
    capabilities: inner.capabilities,
    execute(request: StoreRequest) {
      if (request.op === "release") releases++;
      return inner.execute(request);
    },
  };
  return { store, releases: () => releases };
}

/** A remote-looking store that refuses every call, as a dead server would. */
function deadStore(): Store {
  return {
    capabilities: { ...memoryStore().capabilities, name: "dead", local: false },
    execute() {
      return Promise.reject(
        Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      );
    },
  };
}

/** Sends a GET and aborts it once the server says the handler was entered. */
function abortedGet(app: RunningApp, path: string, enteredBefore: number, target: number) {
  return new Promise<void>((resolve) => {
    const req = httpRequest(`${app.url}${path}`, { agent: false });
    req.on("error", () => resolve());
    req.on("response", (res) => {
      res.resume();
      resolve();
    });
    req.end();
    const poll = setInterval(() => {
      if (app.entered() >= enteredBefore + target) {
        clearInterval(poll);
        req.destroy();
      }
    }, 2);
  });
}

describe.each(FRAMEWORKS)("%s middleware", (framework) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  const start = async (options: AnyOptions) => {
    app = await startApp(framework, options);
    return app;
  };
  const get = (path: string, init?: RequestInit) => fetch(`${app!.url}${path}`, init);
  /** An onError in this framework's shape: records the error's code, answers `status` with `body`. */
  const answerError = (seen: string[], status: number, body: string) =>
    framework === "hono"
      ? (e: { code: string }, c: { text: (b: string, s: number) => Response }) => {
          seen.push(e.code);
          return c.text(body, status);
        }
      : framework === "fastify"
        ? (
            e: { code: string },
            _r: unknown,
            reply: { code: (n: number) => { send: (b: string) => void } },
          ) => {
            seen.push(e.code);
            reply.code(status).send(body);
          }
        : (
            e: { code: string },
            _r: unknown,
            res: { statusCode: number; end: (b: string) => void },
          ) => {
            seen.push(e.code);
            res.statusCode = status;
            res.end(body);
          };

  describe("headers", () => {
    const exhaust = async () => {
      for (let i = 0; i < 9; i++) await (await get("/ok")).arrayBuffer();
      const last = await get("/ok");
      await last.arrayBuffer();
      const refused = await get("/ok");
      await refused.arrayBuffer();
      return refused;
    };

    it("writes draft-8 by default: every rate policy, the binding one's state, Retry-After when refused", async () => {
      await start({ limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }) });
      const first = await get("/ok");
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ remaining: 9 });
      expect(limitHeaders(first)).toEqual({
        "ratelimit-policy": '"burst";q=10;w=1000, "daily";q=1000;w=86400',
        ratelimit: '"burst";r=9;t=100',
      });
      const refused = await exhaust();
      expect(refused.status).toBe(429);
      expect(limitHeaders(refused)).toEqual({
        "ratelimit-policy": '"burst";q=10;w=1000, "daily";q=1000;w=86400',
        ratelimit: '"burst";r=0;t=1000',
        "retry-after": "100",
      });
    });

    it("writes draft-7", async () => {
      await start({
        limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
        headers: "draft-7",
      });
      expect(limitHeaders(await get("/ok"))).toEqual({
        "ratelimit-policy": "10;w=1000, 1000;w=86400",
        ratelimit: "limit=10, remaining=9, reset=100",
      });
      expect(limitHeaders(await exhaust())).toEqual({
        "ratelimit-policy": "10;w=1000, 1000;w=86400",
        ratelimit: "limit=10, remaining=0, reset=1000",
        "retry-after": "100",
      });
    });

    it("writes draft-6", async () => {
      await start({
        limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
        headers: "draft-6",
      });
      expect(limitHeaders(await get("/ok"))).toEqual({
        "ratelimit-limit": "10",
        "ratelimit-remaining": "9",
        "ratelimit-reset": "100",
      });
      expect(limitHeaders(await exhaust())).toEqual({
        "ratelimit-limit": "10",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "1000",
        "retry-after": "100",
      });
    });

    it("writes legacy X-RateLimit-* alone or with a standard, and nothing with headers: false", async () => {
      await start({
        limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
        headers: false,
        legacyHeaders: true,
      });
      expect(limitHeaders(await get("/ok"))).toEqual({
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "9",
        "x-ratelimit-reset": "100",
      });
      expect(limitHeaders(await exhaust())).toEqual({
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1000",
        "retry-after": "100",
      });
      await app!.close();
      await start({
        limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
        headers: false,
      });
      expect(limitHeaders(await get("/ok"))).toEqual({});
      // A refusal still says when to come back.
      expect(limitHeaders(await exhaust())).toEqual({ "retry-after": "100" });
    });
  });

  it("answers a refusal with 429 application/problem+json (RFC 9457) and Retry-After", async () => {
    await start({
      limiter: createLimiter({
        store: memoryStore(),
        policies: [
          { kind: "fixedWindow", name: "hourly", limit: 1, window: "1h", align: "firstUse" },
        ],
      }),
    });
    expect((await get("/ok")).status).toBe(200);
    const refused = await get("/ok");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const retry = Number(refused.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(3600);
    expect(await refused.json()).toEqual({
      type: "about:blank",
      title: "Too Many Requests",
      status: 429,
      detail: `Rate limit exceeded; retry in ${retry} s.`,
      blockedBy: ["hourly"],
    });
    expect(app!.entered()).toBe(1);
  });

  it("calls onLimited instead, with the headers already set", async () => {
    const onLimited =
      framework === "hono"
        ? (c: { text: (b: string, s: number) => Response }) => c.text("slow down", 418)
        : framework === "fastify"
          ? (_req: unknown, reply: { code: (n: number) => { send: (b: string) => void } }) =>
              reply.code(418).send("slow down")
          : (_req: unknown, res: { statusCode: number; end: (b: string) => void }) => {
              res.statusCode = 418;
              res.end("slow down");
            };
    await start({
      limiter: createLimiter({
        store: memoryStore(),
        policies: [
          { kind: "fixedWindow", name: "hourly", limit: 1, window: "1h", align: "firstUse" },
        ],
      }),
      onLimited,
    });
    await (await get("/ok")).arrayBuffer();
    const refused = await get("/ok");
    expect(refused.status).toBe(418);
    expect(await refused.text()).toBe("slow down");
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(refused.headers.get("ratelimit")).toMatch(/^"hourly";r=0;t=\d+$/);
  });

  it("gives the charge back for the statuses refund selects, once the response is sent", async () => {
    const limiter = createLimiter({
      store: memoryStore(),
      policies: [
        { kind: "fixedWindow", name: "hourly", limit: 3, window: "1h", align: "firstUse" },
      ],
    });
    await start({ limiter, refund: (status: number) => status >= 500, key: () => "client" });
    const remaining = async () => (await limiter.peek("client")).remaining;
    for (let i = 0; i < 5; i++) {
      const res = await get("/status/503");
      expect(res.status).toBe(503);
      await res.arrayBuffer();
      await eventually(async () => (await remaining()) === 3);
    }
    for (let i = 0; i < 3; i++) expect((await get("/status/200")).status).toBe(200);
    expect((await get("/status/200")).status).toBe(429);
  });

  it("holds a lease while a request runs and releases it exactly once when the response finishes", async () => {
    const { store, releases } = countingStore();
    const limiter = createLimiter({
      store,
      policies: [{ kind: "concurrency", name: "inflight", limit: 2, leaseTtl: "1m" }],
    });
    await start({ limiter, key: () => "client" });
    const slow = [get("/slow/600"), get("/slow/600")];
    await eventually(() => app!.entered() === 2);
    const third = await get("/ok");
    expect(third.status).toBe(429);
    await Promise.all((await Promise.all(slow)).map((r) => r.text()));
    for (let i = 0; i < 10; i++) expect((await get("/ok")).status).toBe(200);
    await eventually(async () => releases() === 12);
    expect((await limiter.peek("client")).policies[0]?.remaining).toBe(2);
  });

  it("releases the lease of every aborted request (1,000 aborted, no slot leaked)", async () => {
    const { store, releases } = countingStore();
    const limiter: Limiter = createLimiter({
      store,
      policies: [{ kind: "concurrency", name: "inflight", limit: 50, leaseTtl: "10m" }],
    });
    await start({ limiter, key: () => "client" });
    const free = async () => (await limiter.peek("client")).policies[0]?.remaining;
    for (let batch = 0; batch < 20; batch++) {
      const before = app!.entered();
      await Promise.all(Array.from({ length: 50 }, () => abortedGet(app!, "/hold", before, 50)));
      // Every one of the 50 was admitted: a leaked slot would have refused one of them.
      expect(app!.entered()).toBe(before + 50);
      await eventually(async () => (await free()) === 50, 5000);
    }
    expect(releases()).toBe(1000);
    expect((await get("/ok")).status).toBe(200);
  }, 60_000);

  it("queues requests in wait mode and refuses those that cannot get in within maxWaitMs", async () => {
    const policies: Policy[] = [
      { kind: "tokenBucket", name: "spaced", capacity: 1, refill: { tokens: 1, every: "150ms" } },
    ];
    await start({
      limiter: createLimiter({ store: memoryStore(), policies }),
      wait: { maxWaitMs: 2000 },
    });
    const t0 = Date.now();
    const all = await Promise.all([get("/ok"), get("/ok"), get("/ok")]);
    expect(all.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    await app!.close();

    await start({
      limiter: createLimiter({ store: memoryStore(), policies }),
      wait: { maxWaitMs: 100 },
    });
    const [a, b] = await Promise.all([get("/ok"), get("/ok")]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(429);
    expect(b.headers.get("retry-after")).toBe("1");
  });

  it("waits for a slot in wait mode and exposes the decision", async () => {
    const limiter = createLimiter({
      store: memoryStore(),
      policies: [{ kind: "concurrency", name: "inflight", limit: 1, leaseTtl: "1m" }],
    });
    await start({ limiter, key: () => "client", wait: { maxWaitMs: 3000 } });
    const all = await Promise.all([get("/slow/100"), get("/ok")]);
    expect(all.map((r) => r.status)).toEqual([200, 200]);
    expect(await all[1]!.json()).toEqual({ remaining: 0 });
    await eventually(async () => (await limiter.peek("client")).policies[0]?.remaining === 1);
  });

  describe("store outage", () => {
    const outage = (onStoreError: unknown) =>
      createLimiter({
        store: deadStore(),
        policies: burstAndDaily,
        onStoreError: onStoreError as "deny",
        timeoutMs: 200,
      });

    it('"deny": refuses with 429, the configured limits and a short Retry-After', async () => {
      await start({ limiter: outage("deny") });
      const res = await get("/ok");
      expect(res.status).toBe(429);
      expect(limitHeaders(res)).toEqual({
        "ratelimit-policy": '"burst";q=10;w=1000, "daily";q=1000;w=86400',
        "retry-after": "1",
      });
    });

    it('"allow": admits, writing only the configured limits', async () => {
      await start({ limiter: outage("allow") });
      const res = await get("/ok");
      expect(res.status).toBe(200);
      expect(limitHeaders(res)).toEqual({
        "ratelimit-policy": '"burst";q=10;w=1000, "daily";q=1000;w=86400',
      });
    });

    it('"throw": answers 503 problem+json with Retry-After, or calls onError', async () => {
      await start({ limiter: outage("throw") });
      const res = await get("/ok");
      expect(res.status).toBe(503);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toMatchObject({ status: 503, title: "Service Unavailable" });
      await app!.close();

      const seen: string[] = [];
      const onError = answerError(seen, 502, "store down");
      await start({ limiter: outage("throw"), onError });
      const custom = await get("/ok");
      expect(custom.status).toBe(502);
      expect(seen).toEqual(["STORE_UNAVAILABLE"]);
    });

    it("a key function that returns no key reaches onError as INVALID_ARGUMENT, sync or async", async () => {
      for (const key of [() => 42, async () => 42]) {
        const seen: string[] = [];
        const onError = answerError(seen, 500, "bad key");
        await start({
          limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
          key,
          onError,
        } as AnyOptions);
        const res = await get("/ok");
        expect(res.status).toBe(500);
        expect(seen).toEqual(["INVALID_ARGUMENT"]);
        await app!.close();
        app = undefined;
      }
    });

    it("{ fallback }: decides on the fallback store (degraded: limits only in the headers)", async () => {
      await start({ limiter: outage({ fallback: memoryStore() }) });
      const res = await get("/ok");
      expect(res.status).toBe(200);
      expect(limitHeaders(res)).toEqual({
        "ratelimit-policy": '"burst";q=10;w=1000, "daily";q=1000;w=86400',
      });
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await get("/ok")).status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    });
  });

  it.runIf(framework === "fastify")(
    "leaves a Fastify route with config.rateLimit false alone",
    async () => {
      await start({
        limiter: createLimiter({
          store: memoryStore(),
          policies: [
            { kind: "fixedWindow", name: "hourly", limit: 1, window: "1h", align: "firstUse" },
          ],
        }),
      });
      // The free route first: the route check is set up on the first request it sees.
      for (let i = 0; i < 3; i++) {
        const free = await get("/free");
        expect(free.status).toBe(200);
        expect(limitHeaders(free)).toEqual({});
      }
      expect((await get("/ok")).status).toBe(200);
      expect((await get("/ok")).status).toBe(429);
      const free = await get("/free");
      expect(free.status).toBe(200);
      expect(limitHeaders(free)).toEqual({});
    },
  );

  it.runIf(framework === "fastify")(
    "checks a Fastify route's opt-out without building request.routeOptions per request",
    async () => {
      const fastify = Fastify();
      let reads = 0;
      // Registered before the plugin: counts what the plugin's hook reads of routeOptions.
      fastify.addHook("onRequest", (request, _reply, done) => {
        const proto = Object.getPrototypeOf(request) as object;
        let owner: object | null = proto;
        let descriptor: PropertyDescriptor | undefined;
        while (owner !== null && descriptor === undefined) {
          descriptor = Object.getOwnPropertyDescriptor(owner, "routeOptions");
          owner = Object.getPrototypeOf(owner) as object | null;
        }
        Object.defineProperty(request, "routeOptions", {
          get(this: unknown) {
            reads++;
            return descriptor!.get!.call(this);
          },
        });
        done();
      });
      await fastify.register(fastifyRateLimit, {
        limiter: createLimiter({ store: memoryStore(), policies: burstAndDaily }),
      });
      fastify.get("/ok", async () => "ok");
      fastify.get("/free", { config: { rateLimit: false } }, async () => "free");
      const url = await fastify.listen({ port: 0, host: "127.0.0.1" });
      try {
        for (let i = 0; i < 5; i++) expect((await fetch(`${url}/ok`)).status).toBe(200);
        const free = await fetch(`${url}/free`);
        expect(free.status).toBe(200);
        expect(free.headers.get("ratelimit")).toBeNull();
        // The first request finds where Fastify keeps the route's config; the rest read it there.
        expect(reads).toBeLessThanOrEqual(1);
      } finally {
        await fastify.close();
      }
    },
  );

  it("skips requests skip selects, and chooses a limiter per request", async () => {
    const small = createLimiter({
      store: memoryStore(),
      policies: [{ kind: "fixedWindow", name: "small", limit: 1, window: "1h", align: "firstUse" }],
    });
    const large = createLimiter({
      store: memoryStore(),
      policies: [
        { kind: "fixedWindow", name: "large", limit: 100, window: "1h", align: "firstUse" },
      ],
    });
    const headerOf = (req: unknown): string | undefined => {
      const r = req as {
        headers?: Record<string, string> | { get?: unknown };
        req?: { header: (n: string) => string | undefined };
      };
      if (r.req !== undefined) return r.req.header("x-tenant");
      return (r.headers as Record<string, string> | undefined)?.["x-tenant"];
    };
    await start({
      limiter: async (req: unknown) => (headerOf(req) === "big" ? large : small),
      skip: (req: unknown) => headerOf(req) === "internal",
      key: (req: unknown) => headerOf(req) ?? undefined,
      cost: () => 1,
    });
    const as = (tenant: string) => get("/ok", { headers: { "x-tenant": tenant } });
    expect((await as("tiny")).status).toBe(200);
    expect((await as("tiny")).status).toBe(429);
    const big = await as("big");
    expect(big.status).toBe(200);
    expect(big.headers.get("ratelimit")).toBe(
      '"large";r=99;t=3600'.replace("3600", big.headers.get("ratelimit")!.split("t=")[1]!),
    );
    const skipped = await as("internal");
    expect(skipped.status).toBe(200);
    expect(await skipped.json()).toEqual({ remaining: null });
    expect(limitHeaders(skipped)).toEqual({});
  });
});
