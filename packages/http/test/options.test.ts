import { ConfigError, createLimiter } from "@sluice/core";
import { clientKey } from "@sluice/http";
import { rateLimit as expressRateLimit } from "@sluice/http/express";
import { rateLimit as fastifyRateLimit } from "@sluice/http/fastify";
import { rateLimit as honoRateLimit } from "@sluice/http/hono";
import { rateLimit as nodeRateLimit } from "@sluice/http/node";
import { memoryStore } from "@sluice/store-memory";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";

const limiter = createLimiter({
  store: memoryStore(),
  policies: [{ kind: "fixedWindow", name: "w", limit: 5, window: "1m", align: "firstUse" }],
});

function issuesOf(f: () => unknown) {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error("did not throw");
}

describe("options", () => {
  const factories = {
    express: expressRateLimit,
    hono: honoRateLimit,
    node: nodeRateLimit,
  } as const;

  it.each(Object.entries(factories))(
    "%s: refuses unknown names with the closest known one",
    (_, f) => {
      expect(issuesOf(() => f({ limiter, legacyHeader: true } as never))).toEqual([
        { path: "legacyHeader", message: 'unknown option (did you mean "legacyHeaders"?)' },
      ]);
      expect(issuesOf(() => f({ limiter, wait: { maxWait: 10 } } as never))).toEqual([
        { path: "wait.maxWait", message: 'unknown option (did you mean "maxWaitMs"?)' },
        {
          path: "wait.maxWaitMs",
          message: "wait.maxWaitMs is required (the longest a request may queue, in ms)",
        },
      ]);
    },
  );

  it("names every bad value's field", () => {
    const issues = issuesOf(() =>
      nodeRateLimit({
        limiter: {} as never,
        key: "ip" as never,
        cost: -1,
        skip: true as never,
        headers: "draft-9" as never,
        legacyHeaders: "yes" as never,
        refund: 500 as never,
        wait: { maxWaitMs: 0 },
        onLimited: 429 as never,
        onError: "503" as never,
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      "limiter",
      "key",
      "skip",
      "refund",
      "onLimited",
      "onError",
      "cost",
      "headers",
      "legacyHeaders",
      "wait.maxWaitMs",
    ]);
    expect(issuesOf(() => nodeRateLimit({} as never))).toEqual([
      {
        path: "limiter",
        message: "limiter is required (a Limiter, or a function returning one per request)",
      },
    ]);
    expect(issuesOf(() => nodeRateLimit(undefined as never))[0]?.path).toBe("");
    expect(issuesOf(() => nodeRateLimit({ limiter, wait: true } as never))[0]?.path).toBe("wait");
  });

  it("fastify: register rejects bad options with the same ConfigError", async () => {
    const app = Fastify();
    app.register(fastifyRateLimit, { limiter, hedaers: "draft-7" } as never);
    const err = await app.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      { path: "hedaers", message: 'unknown option (did you mean "headers"?)' },
    ]);
    await app.close();
  });
});

describe("fastify registration", () => {
  it("limits routes declared right after an un-awaited register", async () => {
    const app = Fastify();
    app.register(fastifyRateLimit, {
      limiter: createLimiter({
        store: memoryStore(),
        policies: [{ kind: "fixedWindow", name: "w", limit: 1, window: "1m", align: "firstUse" }],
      }),
    });
    app.get("/", async () => "ok");
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const first = await fetch(url);
      expect(first.headers.get("ratelimit")).toMatch(/^"w";r=0;t=\d+$/);
      expect((await fetch(url)).status).toBe(429);
    } finally {
      await app.close();
    }
  });
});

describe("clientKey", () => {
  it("keeps IPv4 as is and reads IPv4-mapped IPv6 as IPv4", () => {
    expect(clientKey("203.0.113.9")).toBe("203.0.113.9");
    expect(clientKey("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(clientKey("::FFFF:cb00:7109")).toBe("203.0.113.9");
  });

  it("masks IPv6 to its /56 prefix, whatever the spelling", () => {
    const key = "2001:db8:1234:5600::/56";
    expect(clientKey("2001:db8:1234:5678:9abc:def0:1234:5678")).toBe(key);
    expect(clientKey("2001:0db8:1234:56ff::1")).toBe(key);
    expect(clientKey("2001:DB8:1234:5600::")).toBe(key);
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/56");
    expect(clientKey("::1")).toBe("0:0:0:0::/56");
    expect(clientKey("2001:db8:1234:5700::1")).not.toBe(key);
  });

  it("leaves what is not an address alone", () => {
    expect(clientKey("not:an:address:::")).toBe("not:an:address:::");
    expect(clientKey("1:2:3:4:5:6:7:8:9")).toBe("1:2:3:4:5:6:7:8:9");
  });
});
