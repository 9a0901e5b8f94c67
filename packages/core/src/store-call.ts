import { SluiceError } from "./errors.js";
import type { Store, StoreRequest, StoreResult } from "./store.js";

/** Errors that go through `onStoreError`; anything else a store throws is the caller's bug. */
export function isStoreFailure(e: unknown): e is SluiceError {
  return e instanceof SluiceError && (e.code === "STORE_UNAVAILABLE" || e.code === "STORE_TIMEOUT");
}

/** Normalises whatever a store threw: coded errors pass, anything else is STORE_UNAVAILABLE. */
export function toStoreError(e: unknown, store: Store): SluiceError {
  if (e instanceof SluiceError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new SluiceError(
    "STORE_UNAVAILABLE",
    `${store.capabilities.name} store failed: ${message}`,
    {
      cause: e,
    },
  );
}

/**
 * Runs one store call. Local stores are called directly; remote ones race `timeoutMs`, and a
 * late answer or late failure is absorbed so it never surfaces as an unhandled rejection.
 */
export function callStore(
  store: Store,
  request: StoreRequest,
  timeoutMs: number,
): StoreResult | Promise<StoreResult> {
  const out = store.execute(request);
  if (store.capabilities.local || !(out instanceof Promise)) return out;
  return new Promise<StoreResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new SluiceError(
          "STORE_TIMEOUT",
          `${store.capabilities.name} store did not answer within ${timeoutMs} ms (timeoutMs)`,
        ),
      );
    }, timeoutMs);
    out.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
