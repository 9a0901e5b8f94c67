import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { rateLimit as expressRateLimit } from "@sluice/http/express";
import { rateLimit as fastifyRateLimit } from "@sluice/http/fastify";
import { rateLimit as honoRateLimit } from "@sluice/http/hono";
import { rateLimit as nodeRateLimit } from "@sluice/http/node";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";

export type Framework = "express" | "fastify" | "hono" | "node";
export const FRAMEWORKS: readonly Framework[] = ["express", "fastify", "hono", "node"];

/** Options as a test writes them; each framework casts to its own option type. */
// biome-ignore lint/suspicious/noExplicitAny: one options object is handed to four typed middlewares.
export type AnyOptions = Record<string, any>;

export interface RunningApp {
  readonly url: string;
  /** Requests that reached a route handler (admitted and in the app). */
  readonly entered: () => number;
  close(): Promise<void>;
}

/**
 * Routes, the same in every framework:
 * - `GET /ok` -> 200 `{ remaining }` from the decision the middleware exposed;
 * - `GET /status/:code` -> that status;
 * - `GET /slow/:ms` -> 200 after that many ms;
 * - `GET /hold` -> never answers: waits until the client goes away.
 */
export async function startApp(framework: Framework, options: AnyOptions): Promise<RunningApp> {
  let entered = 0;
  const enter = () => {
    entered++;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const untilClosed = (req: IncomingMessage) =>
    new Promise<void>((r) => {
      if (req.socket.destroyed) r();
      else req.socket.once("close", () => r());
    });

  let server: Server;
  let closeApp: () => Promise<void> = async () => {};
  if (framework === "express") {
    const app = express();
    app.use(expressRateLimit(options as never));
    app.get("/ok", (req, res) => {
      enter();
      res.json({ remaining: req.rateLimit?.remaining ?? null });
    });
    app.get("/status/:code", (req, res) => {
      enter();
      res.status(Number(req.params.code)).send("done");
    });
    app.get("/slow/:ms", async (req, res) => {
      enter();
      await sleep(Number(req.params.ms));
      res.send("slow");
    });
    app.get("/hold", async (req) => {
      enter();
      await untilClosed(req);
    });
    server = createServer(app);
  } else if (framework === "fastify") {
    const app = Fastify();
    await app.register(fastifyRateLimit, options as never);
    app.get("/ok", async (request) => {
      enter();
      return { remaining: request.rateLimit?.remaining ?? null };
    });
    app.get<{ Params: { code: string } }>("/status/:code", async (request, reply) => {
      enter();
      return reply.code(Number(request.params.code)).send("done");
    });
    app.get<{ Params: { ms: string } }>("/slow/:ms", async (request) => {
      enter();
      await sleep(Number(request.params.ms));
      return "slow";
    });
    app.get("/hold", async (request) => {
      enter();
      await untilClosed(request.raw);
      return "gone";
    });
    app.get("/free", { config: { rateLimit: false } }, async () => "free");
    await app.ready();
    server = app.server;
    closeApp = () => app.close();
  } else if (framework === "hono") {
    const app = new Hono();
    app.use(honoRateLimit(options as never));
    app.get("/ok", (c) => {
      enter();
      return c.json({ remaining: c.get("rateLimit")?.remaining ?? null });
    });
    app.get("/status/:code", (c) => {
      enter();
      return c.body("done", Number(c.req.param("code")) as 200);
    });
    app.get("/slow/:ms", async (c) => {
      enter();
      await sleep(Number(c.req.param("ms")));
      return c.text("slow");
    });
    app.get("/hold", async (c) => {
      enter();
      await untilClosed((c.env as { incoming: IncomingMessage }).incoming);
      return c.text("gone");
    });
    server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
        resolve(s as Server),
      ) as Server;
    });
  } else {
    const limited = nodeRateLimit(options as never);
    server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      try {
        if (await limited(req, res)) return;
      } catch {
        res.statusCode = 500;
        res.end("error");
        return;
      }
      enter();
      const [, route, arg] = (req.url ?? "").split("/");
      if (route === "ok") {
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ remaining: req.rateLimit?.remaining ?? null }));
      } else if (route === "status") {
        res.statusCode = Number(arg);
        res.end("done");
      } else if (route === "slow") {
        await sleep(Number(arg));
        res.end("slow");
      } else if (route === "hold") {
        await untilClosed(req);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  }
  if (!server.listening) {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    entered: () => entered,
    async close() {
      server.closeAllConnections?.();
      if (framework === "fastify") await closeApp();
      else await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The rate-limit headers of a response, by lower-cased name. */
export function limitHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (/ratelimit|retry-after/i.test(name)) out[name] = value;
  });
  return out;
}

/** Polls `check` until it holds (or fails after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 3000) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
