import { ConfigError, createLimiter, type Policy, SluiceError } from "@sluice/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bucket, clockedStore, fixed, settled, slots, T0, timerStore } from "./helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

function configIssues(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toMatchObject({ code: "CONFIG_INVALID", retryable: false });
    return [...(e as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}

describe("createLimiter", () => {
  const { store } = clockedStore();

  it("throws a ConfigError synchronously with a path under policies[i]", () => {
    const issues = configIssues(() =>
      createLimiter({
        store,
        policies: [
          bucket(5),
          {
            kind: "tokenBucket",
            name: "slow",
            capacity: 5,
            refill: { tokens: 1, every: "5 parsecs" },
          },
        ],
      }),
    );
    expect(issues.map((i) => i.path)).toEqual(["policies[1].refill.every"]);
  });

  it("reports duplicate policy names", () => {
    const issues = configIssues(() =>
      createLimiter({ store, policies: [bucket(5), fixed(5, "burst")] }),
    );
    expect(issues.map((i) => i.path)).toContain("policies[1].name");
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, "1s"])(
    "reports timeoutMs %s",
    (timeoutMs) => {
      const issues = configIssues(() =>
        createLimiter({ store, policies: [bucket(5)], timeoutMs: timeoutMs as number }),
      );
      expect(issues.map((i) => i.path)).toEqual(["timeoutMs"]);
    },
  );

  it.each(["explode", { fallback: {} }, null])("reports onStoreError %j", (onStoreError) => {
    const issues = configIssues(() =>
      createLimiter({ store, policies: [bucket(5)], onStoreError: onStoreError as "deny" }),
    );
    expect(issues.map((i) => i.path)).toEqual(["onStoreError"]);
  });

  it("lists every problem at once", () => {
    const issues = configIssues(() =>
      createLimiter({
        store: {} as never,
        policies: [
          { kind: "tokenBucket", name: "b", capacity: -1, refill: { tokens: 1, every: "1s" } },
        ],
        timeoutMs: 0,
        onStoreError: "maybe" as "deny",
      }),
    );
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(["store", "timeoutMs", "onStoreError", "policies[0].capacity"]),
    );
    expect(issues.every((i) => i.message.length > 0)).toBe(true);
  });

  it("names each policy's problem under policies[i], with a hint for a misspelt field", () => {
    const issues = configIssues(() =>
      createLimiter({
        store,
        timeoutMs: -1,
        onStoreError: "explode" as never,
        policies: [
          bucket(5, "bucket"),
          {
            kind: "tokenBucket",
            name: "b2",
            capacity: 5,
            refill: { tokens: 1, every: "soon" },
          } as never,
          { kind: "fixedWindow", name: "bucket", limit: 1, window: "1h" },
          { kind: "fixedWindow", name: "tz", limit: 1, window: "1d", timeZone: "Mars/Olympus" },
          { kind: "pool", name: "p", capacty: 3 } as never,
        ],
      }),
    );
    expect(issues.map((i) => i.path)).toEqual(
      expect.arrayContaining([
        "timeoutMs",
        "onStoreError",
        "policies[1].refill.every",
        "policies[2].name",
        "policies[3].timeZone",
        "policies[4].capacty",
        "policies[4].capacity",
        "policies[4].refill",
      ]),
    );
    const typo = issues.find((i) => i.path === "policies[4].capacty");
    expect(typo?.message).toContain('did you mean "capacity"');
  });

  it("returns bound methods: each works handed on alone", async () => {
    const clock = clockedStore();
    const limiter = createLimiter({ store: clock.store, policies: [bucket(2), slots(1)] });
    const { take, peek, wait, tryAcquire, acquire, run, refund, reconcile, reset } = limiter;
    const keys = ["a", "b", "a"];
    const decisions = await Promise.all(keys.map((k) => take(k)));
    expect(decisions.map((d) => d.remaining)).toEqual([1, 1, 0]);
    expect(await Promise.all(["a", "b"].map(peek))).toMatchObject([
      { remaining: 0 },
      { remaining: 1 },
    ]);
    // `keys.map(limiter.take)` hands `take` an index as its options: it still costs 1.
    const takeOne: (key: string) => Promise<unknown> = limiter.take;
    expect((await Promise.all(["b"].map(takeOne)))[0]).toMatchObject({ remaining: 0 });
    await refund("a", { cost: 2 });
    await reconcile("a", { policy: "burst", remaining: 1 });
    expect(await wait("a")).toMatchObject({ allowed: true, remaining: 0 });
    await reset("a"); // the bucket is full again: two takes for the three leases below
    const { lease } = await tryAcquire("a");
    await lease!.release();
    await (await acquire("a")).release();
    await refund("a");
    expect(await run("a", () => "ran")).toBe("ran");
  });

  it("accepts the documented defaults", () => {
    expect(() => createLimiter({ store, policies: [bucket(5)] })).not.toThrow();
  });
});

describe("time-zone daily window", () => {
  const daily: Policy = {
    kind: "fixedWindow",
    name: "daily",
    limit: 2,
    window: "1d",
    timeZone: "America/New_York",
  };

  it("resets at local midnight, 23 hours apart across the spring DST change", async () => {
    // 15:00 EST on Saturday 7 March 2026; clocks go forward on Sunday 8 March.
    const start = Date.UTC(2026, 2, 7, 20);
    vi.useFakeTimers({ now: start });
    const { store } = timerStore();
    const limiter = createLimiter({ store, policies: [daily] });
    const first = await limiter.take("k", { cost: 2 });
    const midnight8 = Date.UTC(2026, 2, 8, 5); // 00:00 EST
    expect(first.policies[0]?.resetAtMs).toBe(midnight8);
    const refused = await limiter.take("k");
    expect(refused.retryAfterMs).toBe(midnight8 - start);
    vi.setSystemTime(midnight8 - 1);
    expect((await limiter.take("k")).allowed).toBe(false);
    vi.setSystemTime(midnight8);
    const next = await limiter.take("k");
    expect(next).toMatchObject({ allowed: true, remaining: 1 });
    const midnight9 = Date.UTC(2026, 2, 9, 4); // 00:00 EDT, 23 h later
    expect(next.policies[0]?.resetAtMs).toBe(midnight9);
  });

  it("follows the store's clock, not a client clock months off", async () => {
    // The store says 2026-03-08 while this process's clock says otherwise: after the first
    // answer the limiter sends the days around the store's time.
    const clock = clockedStore(Date.UTC(2026, 2, 8, 12));
    const limiter = createLimiter({ store: clock.store, policies: [{ ...daily, limit: 1 }] });
    await limiter.peek("k");
    const first = await limiter.take("k");
    // 2026-03-09 00:00 in New York is 04:00 UTC (EDT); the day began at 05:00 UTC (EST).
    expect(first.policies[0]!.resetAtMs).toBe(Date.UTC(2026, 2, 9, 4));
    expect((await limiter.take("k")).retryAfterMs).toBe(Date.UTC(2026, 2, 9, 4) - clock.now());
  });

  it("resets at local midnight in Europe/London, not at UTC midnight in summer", async () => {
    const start = Date.UTC(2026, 6, 1, 22, 30); // 23:30 BST
    vi.useFakeTimers({ now: start });
    const { store } = timerStore();
    const limiter = createLimiter({ store, policies: [{ ...daily, timeZone: "Europe/London" }] });
    const d = await limiter.take("k", { cost: 2 });
    expect(d.policies[0]?.resetAtMs).toBe(Date.UTC(2026, 6, 1, 23));
    vi.setSystemTime(Date.UTC(2026, 6, 1, 23));
    expect((await limiter.take("k")).allowed).toBe(true);
  });
});

describe("updatePolicies", () => {
  it("keeps consumption for a policy that keeps its name", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(5)] });
    await limiter.take("k", { cost: 3 });
    limiter.updatePolicies([fixed(10)]);
    const d = await limiter.peek("k");
    expect(d.policies[0]).toMatchObject({ limit: 10, remaining: 7 });
  });

  it("starts a renamed or new policy fresh and drops removed ones", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(5), bucket(3)] });
    await limiter.take("k", { cost: 3 });
    limiter.updatePolicies([fixed(5, "renamed"), slots(1)]);
    const d = await limiter.peek("k");
    expect(d.policies.map((p) => [p.name, p.remaining])).toEqual([
      ["renamed", 5],
      ["slots", 1],
    ]);
  });

  it("keeps a held lease's slot when the policies are updated", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [slots(1)] });
    const lease = await limiter.acquire("k");
    limiter.updatePolicies([slots(2)]);
    expect((await limiter.peek("k")).policies[0]).toMatchObject({ limit: 2, remaining: 1 });
    await lease.release();
    expect((await limiter.peek("k")).policies[0]).toMatchObject({ limit: 2, remaining: 2 });
  });

  it("refuses invalid policies with a ConfigError and keeps the old ones", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [fixed(5)] });
    expect(() => limiter.updatePolicies([fixed(0)])).toThrow(ConfigError);
    expect((await limiter.take("k")).policies[0]?.limit).toBe(5);
  });

  it("lets a wait in progress continue under the new policies", async () => {
    vi.useFakeTimers({ now: T0 });
    const { store } = timerStore();
    const limiter = createLimiter({ store, policies: [bucket(1, "burst", "1h")] });
    await limiter.take("k");
    const waiting = limiter.wait("k");
    await vi.advanceTimersByTimeAsync(10);
    limiter.updatePolicies([bucket(1, "burst", "1s")]);
    // Admitted under the new refill rate, not after the hour planned under the old one.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await settled(waiting)).toBe(true);
    expect((await waiting).allowed).toBe(true);
  });
});

describe("close", () => {
  it("rejects pending waits and acquires", async () => {
    vi.useFakeTimers({ now: T0 });
    const { store } = timerStore();
    const limiter = createLimiter({ store, policies: [bucket(1), slots(1)] });
    await limiter.acquire("k");
    const waiting = limiter.wait("k").catch((e: unknown) => e);
    const acquiring = limiter.acquire("other-key").then(() => limiter.acquire("other-key"));
    const caught = acquiring.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    limiter.close("shutting down");
    const e = await waiting;
    expect(e).toBeInstanceOf(SluiceError);
    expect(e).toMatchObject({ code: "INVALID_ARGUMENT", message: "shutting down" });
    expect(await caught).toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("refuses every new call", async () => {
    const { store, requests } = clockedStore();
    const limiter = createLimiter({ store, policies: [bucket(5), slots(1)] });
    limiter.close();
    limiter.close();
    expect(limiter.closed).toBe(true);
    for (const call of [
      () => limiter.take("k"),
      () => limiter.peek("k"),
      () => limiter.wait("k"),
      () => limiter.tryAcquire("k"),
      () => limiter.acquire("k"),
      () => limiter.run("k", () => 1),
      () => limiter.refund("k"),
      () => limiter.reconcile("k", { policy: "burst", remaining: 1 }),
      () => limiter.reset("k"),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect(requests).toHaveLength(0);
  });

  it("still lets a lease held before close be released", async () => {
    const { store } = clockedStore();
    const limiter = createLimiter({ store, policies: [slots(1)] });
    const lease = (await limiter.tryAcquire("k")).lease!;
    limiter.close();
    await lease.release();
    const other = createLimiter({ store, policies: [slots(1)] });
    expect((await other.tryAcquire("k")).lease).not.toBeNull();
  });
});
