import { SluiceError } from "@sluice/core";

// Reply prefixes Redis uses for conditions that pass on their own (a failover, a busy script,
// a restart still loading its data set, a full instance being trimmed).
const TRANSIENT_REPLY =
  /^(NOSCRIPT|BUSY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS|MOVED|ASK)\b/;
// Replies that retrying cannot fix: another program's value at one of our keys, or keys that
// do not share a slot (a broken hash tag). They still go through onStoreError, as failures.
const PERMANENT_REPLY = /^(WRONGTYPE|CROSSSLOT)\b/;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Maps whatever ioredis rejected with to a SluiceError: STORE_TIMEOUT for command timeouts,
 * STORE_UNAVAILABLE for everything else (refused or closed connections, the offline queue giving
 * up, script and server errors). The original error is the `cause`.
 */
export function classifyError(e: unknown): SluiceError {
  if (e instanceof SluiceError) return e;
  const message = messageOf(e);
  const code = (e as { code?: unknown } | null)?.code;
  if (message === "Command timed out" || code === "ETIMEDOUT") {
    return new SluiceError("STORE_TIMEOUT", `redis store: command timed out (${message})`, {
      cause: e,
    });
  }
  const isReply = e instanceof Error && e.name === "ReplyError";
  if (isReply && PERMANENT_REPLY.test(message)) {
    return new SluiceError("STORE_UNAVAILABLE", `redis store: ${message}`, {
      cause: e,
      retryable: false,
    });
  }
  let reason: string;
  if (isReply)
    reason = TRANSIENT_REPLY.test(message) ? "server busy or failing over" : "script error";
  else if (typeof code === "string") reason = `connection failed (${code})`;
  else reason = "connection unavailable";
  return new SluiceError("STORE_UNAVAILABLE", `redis store: ${reason}: ${message}`, { cause: e });
}
