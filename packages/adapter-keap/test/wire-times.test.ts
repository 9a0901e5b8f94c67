import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendMarked, unmarked, type WireMark } from "../src/wire-times.js";
import { blockFor, localServer } from "./helpers.js";

let server: Awaited<ReturnType<typeof localServer>>;
let url: string;
beforeAll(async () => {
  server = await localServer();
  url = server.url;
});
afterAll(() => server.close());

describe("sendMarked", () => {
  it("marks when Node's fetch wrote the request, after delay in this process", async () => {
    await (await fetch(url)).text(); // a warm connection
    const mark = unmarked();
    const calledAt = performance.now();
    const res = await sendMarked(mark, () => {
      const sent = fetch(url, { method: "POST", body: "{}" });
      blockFor(20); // the request is written in a later turn of the event loop
      return sent;
    });
    await res.text();
    expect(mark.headersSentMs! - calledAt).toBeGreaterThanOrEqual(20);
    expect(mark.headersSentMs!).toBeLessThanOrEqual(performance.now());
  });

  it("does not count delay after the request went out", async () => {
    const mark = unmarked();
    const calledAt = performance.now();
    await sendMarked(mark, async () => {
      const res = await fetch(url);
      blockFor(20); // the answer is read late
      return res.text();
    });
    expect(mark.headersSentMs! - calledAt).toBeLessThan(15);
    expect(mark.answeredMs! - calledAt).toBeLessThan(15);
    expect(mark.answeredMs!).toBeGreaterThanOrEqual(mark.headersSentMs!);
  });

  it("keeps the marks of concurrent calls apart and leaves other requests unmarked", async () => {
    const marks: WireMark[] = [1, 2, 3].map(() => unmarked());
    const other = fetch(url).then((r) => r.text());
    await Promise.all(
      marks.map((mark, i) =>
        sendMarked(mark, async () => {
          // 50 ms apart: a loaded machine may take a while to open a connection for the first.
          await new Promise((r) => setTimeout(r, 50 * i));
          return (await fetch(url)).text();
        }),
      ),
    );
    await other;
    const at = marks.map((m) => m.headersSentMs!);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(8);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(8);
  });

  it("leaves the mark unset for a fetch that does not go through undici", async () => {
    const mark = unmarked();
    await sendMarked(mark, async () => new Response("{}"));
    expect(mark).toEqual(unmarked());
  });
});
