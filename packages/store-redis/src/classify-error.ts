import { SluiceError } from "@sluice/core";
import { DeadlinePassedError } from "@sluice/core/store";

// Reply prefixes Redis uses for conditions that pass on their own (a failover, a busy script,
// a restart still loading its data set, a full instance being trimmed).
const TRANSIENT_REPLY =
  /^(NOSCRIPT|BUSY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS|MOVED|ASK|ERR max number of clients)\b/;
// decide.lua's answer to a batch that arrived after its deadline: store clock, deadline.
const DEADLINE_REPLY = /^SLUICE_DEADLINE (\d+) (\d+)/;

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
  const late = DEADLINE_REPLY.exec(message);
  if (late !== null) return new DeadlinePassedError("redis", Number(late[1]), Number(late[2]));
  const code = (e as { code?: unknown } | null)?.code;
  if (message === "Command timed out" || code === "ETIMEDOUT") {
    return new SluiceError("STORE_TIMEOUT", `redis store: command timed out (${message})`, {
      cause: e,
    });
  }
  const isReply = e instanceof Error && e.name === "ReplyError";
  // Every other reply retrying cannot fix: another program's value at one of our keys
  // (WRONGTYPE), keys that do not share a slot (CROSSSLOT), a wrong password (WRONGPASS,
  // NOAUTH), a script error. A misconfiguration: it rejects whatever onStoreError says.
  if (isReply && !TRANSIENT_REPLY.test(message)) {
    return new SluiceError("STORE_UNAVAILABLE", `redis store: ${message}`, {
      cause: e,
      retryable: false,
    });
  }
  let reason: string;
  if (isReply) reason = "server busy or failing over";
  else if (typeof code === "string") reason = `connection failed (${code})`;
  else reason = "connection unavailable";
  return new SluiceError("STORE_UNAVAILABLE", `redis store: ${reason}: ${message}`, { cause: e });
}
