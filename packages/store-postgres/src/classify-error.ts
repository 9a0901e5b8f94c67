import { SluiceError } from "@sluice/core";

/**
 * Maps whatever pg (or the network under it) threw into a `SluiceError` the limiter understands:
 * STORE_TIMEOUT when the server or the pool took too long, STORE_UNAVAILABLE otherwise, each with
 * `retryable` saying whether the same call could succeed later without anyone changing anything.
 * Already-classified errors pass through unchanged.
 */
export function classifyError(error: unknown): SluiceError {
  if (error instanceof SluiceError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
  };
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : String(error);
  const fail = (kind: "STORE_TIMEOUT" | "STORE_UNAVAILABLE", retryable: boolean, why: string) =>
    new SluiceError(kind, `postgres store: ${why}: ${message}`, { cause: error, retryable });

  // SQLSTATE codes from the server (five characters).
  if (/^[0-9A-Z]{5}$/.test(code)) {
    switch (code) {
      case "57014": // query_canceled: statement_timeout or pg_cancel_backend
        return fail("STORE_TIMEOUT", true, "statement timed out");
      case "55P03": // lock_not_available: lock_timeout
        return fail("STORE_TIMEOUT", true, "lock wait timed out");
      case "40001": // serialization_failure (a SERIALIZABLE default isolation level)
      case "40P01": // deadlock_detected
        return fail("STORE_UNAVAILABLE", true, "transaction rolled back, safe to retry");
      case "57P01": // admin_shutdown (pg_terminate_backend, server stopping)
      case "57P02": // crash_shutdown
      case "57P03": // cannot_connect_now (server starting up)
        return fail("STORE_UNAVAILABLE", true, "server shutting down or starting");
      case "42P05": // duplicate_prepared_statement: one connection's statement cache, not the schema
        return fail("STORE_UNAVAILABLE", true, "prepared statement name in use on this connection");
      case "42P01": // undefined_table
      case "42883": // undefined_function
      case "3F000": // invalid_schema_name
        return fail("STORE_UNAVAILABLE", false, "schema objects missing; run store.migrate()");
    }
    const cls = code.slice(0, 2);
    if (cls === "08") return fail("STORE_UNAVAILABLE", true, "connection failure");
    if (cls === "53") return fail("STORE_UNAVAILABLE", true, "server out of resources");
    if (cls === "58") return fail("STORE_UNAVAILABLE", true, "server system error");
    if (cls === "28") return fail("STORE_UNAVAILABLE", false, "authentication failed");
    if (cls === "42") return fail("STORE_UNAVAILABLE", false, "SQL error (schema out of date?)");
    return fail("STORE_UNAVAILABLE", false, `server refused the call (SQLSTATE ${code})`);
  }

  // Node socket errors.
  switch (code) {
    case "ETIMEDOUT":
      return fail("STORE_TIMEOUT", true, "connection timed out");
    case "ECONNREFUSED":
    case "ECONNRESET":
    case "EPIPE":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ECONNABORTED":
      return fail("STORE_UNAVAILABLE", true, "cannot reach the server");
  }

  // pg and pg-pool raise plain Errors for these; the message is all there is to go on.
  if (/timeout exceeded when trying to connect/i.test(message)) {
    return fail("STORE_TIMEOUT", true, "pool exhausted (connectionTimeoutMillis)");
  }
  if (/query read timeout|timeout expired/i.test(message)) {
    return fail("STORE_TIMEOUT", true, "query timed out");
  }
  if (/after calling end on the pool/i.test(message)) {
    return fail("STORE_UNAVAILABLE", false, "the pool has been ended");
  }
  if (/connection terminated|not queryable|connection error|socket|ECONNRESET/i.test(message)) {
    return fail("STORE_UNAVAILABLE", true, "connection lost");
  }
  return fail("STORE_UNAVAILABLE", true, "unexpected failure");
}

/** Errors after which the transaction was rolled back and re-running it is safe and useful. */
export function isTransientConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "40001" || code === "40P01";
}

/**
 * Errors caused by the data of a request rather than by the server or the connection: class 22
 * (data exception: a NUL byte in a key, a number out of range) and 54 (program limit exceeded: a
 * key too long for the index).
 */
export function isRequestError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|54)[0-9A-Z]{3}$/.test(code);
}
