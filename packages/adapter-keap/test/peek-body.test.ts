import { memoryStore } from "@sluice/store-memory";
import { describe, expect, it } from "vitest";
import { createKeapClient } from "../src/index.js";

const PAT = { tenant: "ab103", token: "pat-1" };
const BIG = "x".repeat(70 * 1024);

/** A fetch answering 429 with a body of 64 KiB or more, then 200. */
function bigThrottle() {
  let calls = 0;
  const fetch = (async () => {
    calls++;
    return calls === 1
      ? new Response(BIG, { status: 429, headers: { "Retry-After": "0" } })
      : new Response("{}", { status: 200 });
  }) as typeof globalThis.fetch;
  return { fetch, calls: () => calls };
}

/** Settles within `ms`, or rejects saying it did not. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms),
    ),
  ]);
}

describe("a 429 whose body is 64 KiB or more", () => {
  it("settles (reading at most 64 KiB of the body) and retries", async () => {
    const { fetch, calls } = bigThrottle();
    const keap = createKeapClient({
      profile: "pat",
      store: memoryStore(),
      identity: PAT,
      fetch,
      maxWaitMs: 2_000,
    });
    const res = await within(
      keap.fetch("https://api.infusionsoft.com/crm/rest/v1/contacts"),
      3_000,
    );
    expect(res.status).toBe(200);
    expect(calls()).toBe(2);
  });

  it("leaves no unhandled rejection when the call is aborted", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { fetch } = bigThrottle();
      const keap = createKeapClient({ profile: "pat", store: memoryStore(), identity: PAT, fetch });
      const controller = new AbortController();
      const call = keap.fetch("https://api.infusionsoft.com/crm/rest/v1/contacts", {
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(new Error("stop")), 20);
      const outcome = await within(call, 3_000).catch((e: unknown) => e);
      expect(outcome).toMatchObject({ message: "stop" });
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
