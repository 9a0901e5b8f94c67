import type { StoreRequest } from "./contract.js";

/**
 * One letter per store operation, shared by every backend (the Lua script and the SQL function
 * read the same letters). A take that also acquires a lease slot of every concurrency policy
 * (tryAcquire) is an operation of its own.
 */
export const OP_CODES = Object.freeze({
  take: "t",
  takeAndAcquire: "a",
  peek: "p",
  refund: "f",
  reconcile: "c",
  release: "l",
  renew: "r",
  reset: "x",
} as const);

/** The one-character code of an op on the wire (Lua and SQL receive it). */
export type OpCode = (typeof OP_CODES)[keyof typeof OP_CODES];

/** The operation code of a request ("a" for a take with `acquire`). */
export function opCode(request: Pick<StoreRequest, "op" | "acquire">): OpCode {
  return request.op === "take" && request.acquire ? OP_CODES.takeAndAcquire : OP_CODES[request.op];
}
