import { describe, expect, it } from "vitest";
import { allowedRequests } from "./load.js";
import { runScenarios } from "./scenarios.js";

// Short versions of `npm run bench:keap`: real processes, a real Redis, small limits.
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const HOUR_MS = 3_600_000;

describe("Keap load across processes", () => {
  it("processes sharing a Redis store get the allowance and no 429 reaches a caller, whatever their clocks; naive ones get 429s", async () => {
    const durationMs = 3_000;
    const prefix = `keap-test-${process.pid}-${Date.now()}`;
    const [shared, oauth, naive] = await runScenarios(
      [
        {
          name: "shared",
          simulator: { profile: "pat", limits: { throttle: 8 } },
          // Redis's host clock is hours off Keap's and the clients' (some of which are off by
          // a few seconds themselves).
          simulatorClockSkewMs: 3 * HOUR_MS,
          processes: [0, 0, 5_000, -5_000].map((offMs) => ({
            clockSkewMs: 3 * HOUR_MS + offMs,
            mode: "paced" as const,
            profile: "pat" as const,
            token: "pat-shared",
            store: "redis" as const,
            redisUrl,
            prefix,
            workers: 4,
            durationMs,
          })),
        },
        {
          name: "oauth",
          simulator: { profile: "oauth", jitterMs: 4 },
          processes: Array.from({ length: 2 }, () => ({
            mode: "paced" as const,
            profile: "oauth" as const,
            token: "app-shared",
            store: "redis" as const,
            redisUrl,
            prefix,
            workers: 4,
            durationMs,
          })),
        },
        {
          name: "naive",
          simulator: { profile: "pat", spikeModel: "bucket", jitterMs: 4 },
          processes: Array.from({ length: 4 }, () => ({
            mode: "naive" as const,
            profile: "pat" as const,
            token: "pat-naive",
            store: "memory" as const,
            workers: 1,
            durationMs,
          })),
        },
      ],
      { startDelayMs: 5_000 },
    );
    // 5/s paced at 220 ms across all four: 14 slots in 3 s, less one more interval for each
    // process's cold first request; the 8 per minute binds.
    expect(allowedRequests({ spike: 5, throttle: 8 }, durationMs)).toBe(8);
    expect(shared!.server.throttled).toBe(0);
    // (An answer still being read when the run stops is not counted by the client.)
    expect(shared!.clients).toMatchObject({ throttled: 0, failed: 0 });
    expect(shared!.server.served).toBe(8);
    // OAuth against the default (sliding) model, 25 per second shared by two processes: the
    // throughput is for the bench (a loaded machine starts processes late); here, that it flows.
    const allowed = allowedRequests({ spike: 25, throttle: 1_500 }, durationMs);
    expect(oauth!.server.served).toBeGreaterThanOrEqual(Math.floor(allowed * 0.1));
    expect(oauth!.server.byCause).toMatchObject({ throttle: 0, quota: 0, tenant: 0 });
    expect(oauth!.server.byCause.spike).toBeLessThanOrEqual(2);
    expect(oauth!.clients.throttled).toBe(0); // no 429 reaches a caller
    expect(oauth!.clients.keap?.sent).toBe(oauth!.server.served + oauth!.server.throttled);
    // Four processes sleeping a second between calls still collide at 5 per second.
    expect(naive!.server.byCause.spike).toBeGreaterThan(0);
    expect(naive!.clients.throttled).toBe(naive!.server.throttled);
    // Fourteen processes start under tsx first: minutes on a machine busy with another run.
  }, 180_000);
});
