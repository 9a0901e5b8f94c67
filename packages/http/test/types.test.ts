import type { Decision } from "@sluice/core";
import { createLimiter } from "@sluice/core";
import { rateLimit as expressRateLimit } from "@sluice/http/express";
import { rateLimit as fastifyRateLimit } from "@sluice/http/fastify";
import { rateLimit as honoRateLimit } from "@sluice/http/hono";
import { type NodeRateLimit, rateLimit as nodeRateLimit } from "@sluice/http/node";
import { memoryStore } from "@sluice/store-memory";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { describe, expectTypeOf, it } from "vitest";

// Checked by `npm run typecheck` (tsc reads this file); at run time the assertions are no-ops.
const limiter = createLimiter({
  store: memoryStore(),
  policies: [{ kind: "tokenBucket", name: "b", capacity: 5, refill: { tokens: 1, every: "1s" } }],
});

describe("typed request augmentation", () => {
  it("types req.rateLimit in Express", () => {
    const app = express();
    app.use(expressRateLimit({ limiter, key: (req) => req.get("x-api-key") ?? undefined }));
    app.get("/", (req, res) => {
      expectTypeOf(req.rateLimit).toEqualTypeOf<Decision | undefined>();
      res.end();
    });
  });

  it("types request.rateLimit in Fastify and the route opt-out", async () => {
    const app = Fastify();
    await app.register(fastifyRateLimit, {
      limiter,
      cost: (request) => (request.url === "/" ? 1 : 2),
    });
    app.get("/", { config: { rateLimit: false } }, async (request) => {
      expectTypeOf(request.rateLimit).toEqualTypeOf<Decision | undefined>();
      return "ok";
    });
    await app.close();
  });

  it('types c.get("rateLimit") in Hono', () => {
    const app = new Hono();
    app.use(honoRateLimit({ limiter, key: (c) => c.req.header("x-api-key") }));
    app.get("/", (c) => {
      expectTypeOf(c.get("rateLimit")).toEqualTypeOf<Decision | undefined>();
      return c.text("ok");
    });
  });

  it("types req.rateLimit for node:http and the limited() result", () => {
    const limited = nodeRateLimit({ limiter });
    expectTypeOf(limited).toEqualTypeOf<NodeRateLimit>();
    expectTypeOf<ReturnType<NodeRateLimit>>().toEqualTypeOf<Promise<boolean>>();
    expectTypeOf<import("node:http").IncomingMessage["rateLimit"]>().toEqualTypeOf<
      Decision | undefined
    >();
  });
});
