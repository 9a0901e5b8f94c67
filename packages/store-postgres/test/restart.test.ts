import { createLimiter, SluiceError } from "@sluice/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresStore } from "../src/index.js";
import { canRunOwnPostgres, freePort, OwnPostgres } from "./own-postgres.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Outcome = "admitted" | SluiceError;

/** Every failure is a retryable, classified store error. */
function expectClassified(outcomes: readonly Outcome[]): void {
  for (const o of outcomes) {
    if (o === "admitted") continue;
    expect(o).toBeInstanceOf(SluiceError);
    expect(["STORE_UNAVAILABLE", "STORE_TIMEOUT"]).toContain(o.code);
    expect(o.retryable).toBe(true);
  }
}

// With CI set this runs (and fails) even where the machine cannot start a server of its own.
describe.runIf(canRunOwnPostgres || Boolean(process.env.CI))(
  "PostgreSQL stopped, crashed and restarted mid-run",
  () => {
    let server: OwnPostgres;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    let pool: pg.Pool;

    beforeAll(async () => {
      process.on("unhandledRejection", onUnhandled);
      server = new OwnPostgres(await freePort());
      server.init();
      server.start();
      pool = new pg.Pool({ ...server.connection, max: 4, connectionTimeoutMillis: 1_000 });
      pool.on("error", () => {});
    }, 60_000);
    afterAll(async () => {
      await pool?.end().catch(() => {});
      server?.destroy();
      process.off("unhandledRejection", onUnhandled);
    });

    it("classifies the failures, then decides again once the server is back, same store and pool, committed state kept", async () => {
      const store = postgresStore({ pool });
      await store.migrate();
      const limiter = createLimiter({
        store,
        policies: [{ kind: "fixedWindow", name: "fw", limit: 1_000_000, window: "1h" }],
        onStoreError: "throw",
        timeoutMs: 500,
      });
      const take = (): Promise<Outcome> =>
        limiter.take("k").then(
          (d) => {
            expect(d.allowed).toBe(true);
            return "admitted" as const;
          },
          (e: unknown) => e as SluiceError,
        );
      // Decisions that may have been committed without the caller hearing of it.
      let unknown = 0;
      let admitted = 0;
      const count = (outcomes: readonly Outcome[]) => {
        expectClassified(outcomes);
        for (const o of outcomes) {
          if (o === "admitted") admitted++;
          else unknown++;
        }
      };
      /** Takes until one is admitted (at most 15 s); the failures are counted as unknown. */
      const untilAdmitted = async () => {
        const failures: Outcome[] = [];
        const until = Date.now() + 15_000;
        while (Date.now() < until) {
          const o = await take();
          failures.push(o);
          if (o === "admitted") break;
          await sleep(100);
        }
        count(failures);
        expect(failures.at(-1)).toBe("admitted");
      };

      count(await Promise.all(Array.from({ length: 5 }, take)));
      expect(admitted).toBe(5);

      for (const mode of ["immediate", "fast"] as const) {
        // Eight callers keep deciding while the server goes away, each until its first error.
        const outcomes: Outcome[] = [];
        const callers = Array.from({ length: 8 }, async () => {
          for (;;) {
            const o = await take();
            outcomes.push(o);
            if (o !== "admitted") return;
          }
        });
        await sleep(50);
        await server.stop(mode);
        await Promise.all(callers);
        count(outcomes);

        // While it is down: refused at once, classified, nothing waits past timeoutMs.
        for (let i = 0; i < 3; i++) {
          const t0 = Date.now();
          const o = await take();
          expect(o).toBeInstanceOf(SluiceError);
          expect((o as SluiceError).code).toBe("STORE_UNAVAILABLE");
          expect((o as SluiceError).retryable).toBe(true);
          expect(Date.now() - t0).toBeLessThan(1_500);
        }

        server.start();
        await untilAdmitted();
      }

      // What was committed survived the crash and the restart: every admitted decision is
      // counted, plus at most the ones whose answer was lost.
      const used = 1_000_000 - (await limiter.peek("k")).policies[0]!.remaining;
      expect(used).toBeGreaterThanOrEqual(admitted);
      expect(used).toBeLessThanOrEqual(admitted + unknown);
      await store.close();
      await sleep(100);
      expect(unhandled).toEqual([]);
    }, 90_000);
  },
);
