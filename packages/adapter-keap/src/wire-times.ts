import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";

/**
 * When a request went out on its socket and when its answer came in: undici (Node's `fetch`, or
 * the undici package) reports writing a request's headers and reading the response's on its
 * diagnostics channels. The time from calling `fetch` to the write is delay inside this process
 * (building the request, a busy event loop, a garbage collection), measured exactly, where a
 * round trip only bounds it; so is the time from reading the answer to `fetch` resolving. A fetch
 * that does not go through undici leaves the marks unset.
 */
export interface WireMark {
  /** `performance.now()` when the request's headers were written; undefined when not seen. */
  headersSentMs: number | undefined;
  /** `performance.now()` when the response's headers were read; undefined when not seen. */
  answeredMs: number | undefined;
}

/** A mark with nothing seen yet, for one call of `sendMarked`. */
export function unmarked(): WireMark {
  return { headersSentMs: undefined, answeredMs: undefined };
}

const marking = new AsyncLocalStorage<WireMark>();
const byRequest = new WeakMap<object, WireMark>();
let subscribed = false;

/** Runs `send` (one fetch), recording in `mark` when its request went out and its answer came in. */
export function sendMarked<T>(mark: WireMark, send: () => Promise<T>): Promise<T> {
  if (!subscribed) subscribeOnce();
  return marking.run(mark, send);
}

function subscribeOnce(): void {
  subscribed = true;
  // Created within the fetch call, so in its async context: the mark of that call (none for
  // requests the application makes elsewhere).
  subscribe("undici:request:create", (message) => {
    const mark = marking.getStore();
    const request = (message as { request?: object }).request;
    if (mark !== undefined && request !== undefined) byRequest.set(request, mark);
  });
  subscribe("undici:client:sendHeaders", (message) => {
    const mark = markOf(message);
    // The first request of the call (a redirect follows it later).
    if (mark !== undefined && mark.headersSentMs === undefined) {
      mark.headersSentMs = performance.now();
    }
  });
  subscribe("undici:request:headers", (message) => {
    const mark = markOf(message);
    if (mark !== undefined && mark.answeredMs === undefined) mark.answeredMs = performance.now();
  });
}

/** The mark of the call that created the message's request, if any. */
function markOf(message: unknown): WireMark | undefined {
  const request = (message as { request?: object }).request;
  return request === undefined ? undefined : byRequest.get(request);
}
