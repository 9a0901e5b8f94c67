import type { IncomingMessage, ServerResponse } from "node:http";
import type { Charge } from "./charge.js";
import { OUTAGE_RETRY_AFTER_S, outageProblem, PROBLEM_TYPE } from "./problem.js";

/** Helpers for the frameworks that answer through node's ServerResponse (node:http, Express). */

const kCharge = Symbol("sluice.charge");
type WithCharge = ServerResponse & { [kCharge]?: Charge };

// Node emits "close" on a ServerResponse once it has finished, or when the connection closed
// first: one hoisted listener settles both ways, and writableFinished tells them apart.
function onClose(this: WithCharge): void {
  const charge = this[kCharge];
  if (charge === undefined) return;
  if (this.writableFinished) charge.finish(this.statusCode);
  else charge.abort();
}

/** Settles `charge` when the response is over; at once if the client already left. */
export function settleWhenDone(req: IncomingMessage, res: ServerResponse, charge: Charge): void {
  if (req.socket.destroyed || res.closed) {
    charge.abort();
    return;
  }
  (res as WithCharge)[kCharge] = charge;
  res.once("close", onClose);
}

/**
 * An AbortSignal that fires when the client disconnects, for a request queued in `wait` mode.
 * The socket's "close" is the disconnect; `done` stops listening (keep-alive sockets live on).
 */
export function disconnectSignal(req: IncomingMessage): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const socket = req.socket;
  const abort = () => controller.abort(new Error("the client disconnected"));
  if (socket.destroyed) abort();
  else socket.once("close", abort);
  return {
    signal: controller.signal,
    done() {
      socket.off("close", abort);
    },
  };
}

export function setHeaders(
  res: ServerResponse,
  headers: Readonly<Record<string, string>> | undefined,
): void {
  if (headers === undefined) return;
  for (const name in headers) res.setHeader(name, headers[name]!);
}

export function sendProblem(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader("Content-Type", PROBLEM_TYPE);
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

export function sendOutage(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader("Retry-After", String(OUTAGE_RETRY_AFTER_S));
  sendProblem(res, 503, outageProblem());
}
