import { SluiceError } from "../errors.js";

/**
 * What a store answers for a request that reached it after its `deadlineMs`: it applied nothing.
 * A timeout after the fact (`STORE_TIMEOUT`, retryable), carrying the store's clock so the engine
 * can correct its estimate of it (a store clock far ahead of the client's).
 */
export class DeadlinePassedError extends SluiceError {
  /** The store clock when it refused the request (epoch ms). */
  readonly storeNowMs: number;
  /** The request's deadline (epoch ms, store clock). */
  readonly deadlineMs: number;

  constructor(store: string, storeNowMs: number, deadlineMs: number) {
    super(
      "STORE_TIMEOUT",
      `${store} store: the request arrived ${storeNowMs - deadlineMs} ms after its deadline (store clock); nothing was applied`,
    );
    this.name = "DeadlinePassedError";
    this.storeNowMs = storeNowMs;
    this.deadlineMs = deadlineMs;
  }
}
