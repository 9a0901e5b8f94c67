import { createLimiter, type Lease, LimitTimeoutError } from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bucket, settled, slots, T0, timerStore } from "./helpers.js";

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(policies = [bucket(10), slots(1)]) {
  const { store, requests } = timerStore();
  return { limiter: createLimiter({ store, policies }), requests };
}

describe("tryAcquire", () => {
  it("takes rate capacity and a slot in one store call", async () => {
    const { limiter, requests } = setup([bucket(10), slots(2)]);
    const { decision, lease } = await limiter.tryAcquire("k", { cost: 3 });
    expect(requests).toHaveLength(1);
    expect(lease).not.toBeNull();
    expect(lease?.expiresAtMs).toBe(T0 + 10_000);
    expect(decision.allowed).toBe(true);
    // remaining counts the slots a tryAcquire uses: 1 free slot < 7 tokens.
    expect(decision.remaining).toBe(1);
    expect(decision.policies.map((p) => p.remaining)).toEqual([7, 1]);
  });

  it("refuses without a lease and charges nothing when every slot is held", async () => {
    const { limiter } = setup();
    await limiter.tryAcquire("k");
    const second = await limiter.tryAcquire("k", { cost: 2 });
    expect(second.lease).toBeNull();
    expect(second.decision).toMatchObject({ allowed: false, blockedBy: ["slots"] });
    expect((await limiter.peek("k")).policies[0]?.remaining).toBe(9);
  });

  it("takes no slot when a rate policy refuses", async () => {
    const { limiter } = setup([bucket(2), slots(1)]);
    const refused = await limiter.tryAcquire("k", { cost: 3 });
    expect(refused.lease).toBeNull();
    expect(refused.decision).toMatchObject({
      blockedBy: ["burst"],
      retryAfterMs: Number.POSITIVE_INFINITY,
    });
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("frees the slot on release", async () => {
    const { limiter } = setup();
    const { lease } = await limiter.tryAcquire("k");
    await lease?.release();
    expect((await limiter.peek("k")).policies[1]?.remaining).toBe(1);
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("releases idempotently: a second release frees no other holder's slot", async () => {
    const { limiter } = setup([slots(2)]);
    const a = (await limiter.tryAcquire("k")).lease!;
    await limiter.tryAcquire("k");
    await a.release();
    await a.release();
    await a[Symbol.asyncDispose]();
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
  });

  it("frees the slot of a lease nobody releases once leaseTtl passes", async () => {
    const { limiter } = setup([slots(1, "5s")]);
    const lease = (await limiter.tryAcquire("k")).lease!;
    vi.advanceTimersByTime(4_999);
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
    vi.advanceTimersByTime(1);
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
    // Releasing the expired lease is a no-op, not an error, and frees nobody else's slot.
    await lease.release();
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
  });

  it("reports the earliest expiry over the lease's slots", async () => {
    const { limiter } = setup([slots(1, "30s", "long"), slots(1, "5s", "short")]);
    const { lease } = await limiter.tryAcquire("k");
    expect(lease?.expiresAtMs).toBe(T0 + 5_000);
  });
});

describe("lease renew", () => {
  it("extends expiresAtMs by each policy's leaseTtl and keeps the slot past the old expiry", async () => {
    const { limiter } = setup([slots(1, "5s")]);
    const lease = (await limiter.tryAcquire("k")).lease!;
    vi.advanceTimersByTime(4_000);
    await lease.renew();
    expect(lease.expiresAtMs).toBe(T0 + 9_000);
    vi.advanceTimersByTime(4_000);
    expect((await limiter.tryAcquire("k")).lease).toBeNull();
    vi.advanceTimersByTime(1_000);
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("renews for a given ttlMs", async () => {
    const { limiter } = setup([slots(1, "5s")]);
    const lease = (await limiter.tryAcquire("k")).lease!;
    await lease.renew(60_000);
    expect(lease.expiresAtMs).toBe(T0 + 60_000);
  });

  it("rejects with LEASE_EXPIRED after release", async () => {
    const { limiter } = setup();
    const lease = (await limiter.tryAcquire("k")).lease!;
    await lease.release();
    await expect(lease.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
  });

  it("rejects with LEASE_EXPIRED after expiry and does not take the slot back", async () => {
    const { limiter } = setup([slots(1, "5s")]);
    const lease = (await limiter.tryAcquire("k")).lease!;
    vi.advanceTimersByTime(5_000);
    const other = (await limiter.tryAcquire("k")).lease;
    expect(other).not.toBeNull();
    await expect(lease.renew()).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    await other?.release();
    expect((await limiter.peek("k")).policies[0]?.remaining).toBe(1);
  });

  it("rejects an invalid ttlMs with INVALID_ARGUMENT", async () => {
    const { limiter } = setup();
    const lease = (await limiter.tryAcquire("k")).lease!;
    await expect(lease.renew(0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(lease.renew(1.5)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("lease disposal", () => {
  it("releases at the end of an await using block", async () => {
    const { limiter } = setup();
    {
      await using lease = await limiter.acquire("k");
      expect(lease.expiresAtMs).toBeGreaterThan(T0);
      expect((await limiter.tryAcquire("k")).lease).toBeNull();
    }
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });

  it("releases through Symbol.asyncDispose at the end of an await-using scope", async () => {
    const { limiter } = setup();
    const use = async () => {
      // What `await using lease = ...` compiles to.
      const lease: Lease = await limiter.acquire("k");
      try {
        expect((await limiter.tryAcquire("k")).lease).toBeNull();
      } finally {
        await lease[Symbol.asyncDispose]();
      }
    };
    await use();
    expect((await limiter.tryAcquire("k")).lease).not.toBeNull();
  });
});

describe("acquire", () => {
  it("resolves with a lease at once when a slot is free", async () => {
    const { limiter } = setup();
    const lease = await limiter.acquire("k", { cost: 2 });
    expect(lease.id).toEqual(expect.any(String));
    expect((await limiter.peek("k")).policies.map((p) => p.remaining)).toEqual([8, 0]);
  });

  it("gets a slot freed in-process as soon as it is released, without polling", async () => {
    const { limiter } = setup();
    const held = await limiter.acquire("k");
    const waiting = limiter.acquire("k");
    await vi.advanceTimersByTimeAsync(5);
    expect(await settled(waiting)).toBe(false);
    await held.release();
    // No fake time passes: the release wakes the queue.
    expect(await settled(waiting)).toBe(true);
    expect((await waiting).id).not.toBe(held.id);
  });

  it("gets a slot released while its own attempt was in flight, without polling", async () => {
    const { limiter } = setup();
    const held = await limiter.acquire("k");
    // The waiter's first attempt reaches the store before this release; the wake must not be lost.
    const waiting = limiter.acquire("k");
    await held.release();
    expect(await settled(waiting)).toBe(true);
  });

  it("gets a slot freed by another limiter on the same store by polling", async () => {
    const { store } = timerStore();
    const policies = [slots(1)];
    const a = createLimiter({ store, policies });
    const b = createLimiter({ store, policies });
    const held = await a.acquire("k");
    const waiting = b.acquire("k");
    await vi.advanceTimersByTimeAsync(100);
    await held.release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await settled(waiting)).toBe(true);
  });

  it("treats timeoutMs as a deadline for a slot: waits until it, then rejects", async () => {
    const { limiter } = setup();
    await limiter.acquire("k");
    const waiting = limiter.acquire("k", { timeoutMs: 1_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await waiting;
    expect(error).toBeInstanceOf(LimitTimeoutError);
    expect(error).toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it("gets a slot released before its deadline", async () => {
    const { limiter } = setup();
    const held = await limiter.acquire("k");
    const waiting = limiter.acquire("k", { timeoutMs: 1_000 });
    await vi.advanceTimersByTimeAsync(600);
    await held.release();
    await expect(waiting).resolves.toHaveProperty("id");
  });

  it("rejects at once when rate capacity cannot return before timeoutMs", async () => {
    const { limiter } = setup([bucket(1, "burst", "10s"), slots(5)]);
    await limiter.acquire("k");
    const error = await limiter.acquire("k", { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(Date.now()).toBe(T0);
    expect(error).toMatchObject({ code: "WAIT_TIMEOUT" });
  });

  it("rejects at once a cost that can never fit", async () => {
    const { limiter } = setup([bucket(2), slots(1)]);
    await expect(limiter.acquire("k", { cost: 3 })).rejects.toMatchObject({
      code: "WAIT_TIMEOUT",
    });
  });

  it("waits for rate capacity as well as a slot", async () => {
    const { limiter } = setup([bucket(1), slots(5)]);
    await limiter.acquire("k");
    const waiting = limiter.acquire("k");
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(waiting)).toBe(true);
  });

  it("releases the lease granted to a waiter that aborted during the attempt", async () => {
    const { limiter } = setup();
    const held = await limiter.acquire("k");
    const controller = new AbortController();
    const reason = new Error("gone");
    limiter.on("decision", ({ decision }) => {
      if (decision.allowed) controller.abort(reason);
    });
    const waiting = limiter.acquire("k", { signal: controller.signal }).catch((e: unknown) => e);
    await held.release();
    expect(await waiting).toBe(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect((await limiter.peek("k")).policies[1]?.remaining).toBe(1);
  });
});

describe("run", () => {
  it("acquires, passes the lease to fn, returns its value and releases", async () => {
    const { limiter } = setup();
    const value = await limiter.run("k", async (lease) => {
      expect(lease.expiresAtMs).toBe(T0 + 10_000);
      expect((await limiter.peek("k")).policies[1]?.remaining).toBe(0);
      return 42;
    });
    expect(value).toBe(42);
    expect((await limiter.peek("k")).policies[1]?.remaining).toBe(1);
  });

  it("releases when fn throws and rejects with fn's error", async () => {
    const { limiter } = setup();
    const boom = new Error("boom");
    await expect(
      limiter.run("k", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await limiter.peek("k")).policies[1]?.remaining).toBe(1);
  });

  it("queues a second run behind the first for the only slot", async () => {
    const { limiter } = setup();
    const order: string[] = [];
    let finish!: () => void;
    const first = limiter.run("k", async () => {
      order.push("first start");
      await new Promise<void>((r) => (finish = r));
      order.push("first end");
    });
    const second = limiter.run("k", () => {
      order.push("second");
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(order).toEqual(["first start"]);
    finish();
    await Promise.all([first, second]);
    expect(order).toEqual(["first start", "first end", "second"]);
  });

  it("passes timeoutMs through to acquire", async () => {
    const { limiter } = setup();
    await limiter.acquire("k");
    const fn = vi.fn();
    const running = limiter.run("k", fn, { timeoutMs: 200 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(200);
    expect(await running).toMatchObject({ code: "WAIT_TIMEOUT" });
    expect(fn).not.toHaveBeenCalled();
  });
});
