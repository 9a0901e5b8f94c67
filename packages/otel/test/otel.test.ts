import { subscribe, unsubscribe } from "node:diagnostics_channel";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  type ConfigError,
  createLimiter,
  diagnosticsChannels,
  type Policy,
  type Store,
} from "@sluice/core";
import { instrumentSluice, instrumentStore, metricNames } from "@sluice/otel";
import { memoryStore } from "@sluice/store-memory";
import { afterEach, describe, expect, it } from "vitest";

const NOW_MS = Date.UTC(2026, 0, 1);
const policies: Policy[] = [
  { kind: "tokenBucket", name: "burst", capacity: 2, refill: { tokens: 1, every: "1h" } },
  { kind: "fixedWindow", name: "daily", limit: 100, window: "1d" },
];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A MeterProvider whose data points the test reads on demand. */
function recorder() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  cleanups.push(() => meterProvider.shutdown());
  /** The latest cumulative data points of one instrument. */
  const points = async (name: string): Promise<DataPoint<unknown>[]> => {
    exporter.reset();
    await reader.forceFlush();
    const found = exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics)
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === name);
    return found.flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
  };
  /** Value of the data point with exactly these attributes (0 when there is none). */
  const value = async (name: string, attributes: Record<string, unknown>): Promise<unknown> => {
    const match = (await points(name)).find(
      (p) => JSON.stringify(sorted(p.attributes)) === JSON.stringify(sorted(attributes)),
    );
    return match?.value ?? 0;
  };
  return { meterProvider, points, value };
}

const sorted = (o: object) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/**
 * A remote store that fails on purpose while `down` is true (a plain Error, as a driver throws:
 * the limiter makes it a retryable STORE_UNAVAILABLE), and otherwise answers from a memory store.
 */
function flakyStore(): Store & { down: boolean } {
  const inner = memoryStore({ clock: () => NOW_MS });
  return {
    down: false,
    capabilities: { ...inner.capabilities, name: "flaky", local: false },
    async execute(request) {
      if (this.down) throw new Error("connect ECONNREFUSED 127.0.0.1:1");
      return inner.execute(request);
    },
  };
}

describe("instrumentSluice", () => {
  it("counts decisions by outcome, and by policy and outcome", async () => {
    const { meterProvider, value } = recorder();
    const limiter = createLimiter({ store: memoryStore({ clock: () => NOW_MS }), policies });
    const metrics = instrumentSluice({ meterProvider, limiter, attributes: { app: "t" } });
    cleanups.push(() => metrics.stop());

    for (let i = 0; i < 3; i++) await limiter.take("k");
    await limiter.peek("k");

    const d = metricNames.decisions;
    const take = { app: "t", "sluice.operation": "take", "sluice.degraded": false };
    expect(await value(d, { ...take, "sluice.outcome": "allowed" })).toBe(2);
    expect(await value(d, { ...take, "sluice.outcome": "refused" })).toBe(1);
    const peek = { app: "t", "sluice.operation": "peek", "sluice.degraded": false };
    expect(await value(d, { ...peek, "sluice.outcome": "refused" })).toBe(1);

    const p = metricNames.policyDecisions;
    const burst = { app: "t", "sluice.operation": "take", "sluice.policy.name": "burst" };
    const kinds = { burst: "tokenBucket", daily: "fixedWindow" };
    expect(
      await value(p, { ...burst, "sluice.policy.kind": kinds.burst, "sluice.outcome": "allowed" }),
    ).toBe(2);
    expect(
      await value(p, { ...burst, "sluice.policy.kind": kinds.burst, "sluice.outcome": "refused" }),
    ).toBe(1);
    // The refused take was refused by burst alone: daily would have admitted it.
    const daily = {
      app: "t",
      "sluice.operation": "take",
      "sluice.policy.name": "daily",
      "sluice.policy.kind": kinds.daily,
    };
    expect(await value(p, { ...daily, "sluice.outcome": "allowed" })).toBe(3);
    expect(await value(p, { ...daily, "sluice.outcome": "refused" })).toBe(0);
  });

  it("hears every limiter through the diagnostics channels, and nothing once stopped", async () => {
    const { meterProvider, value } = recorder();
    const metrics = instrumentSluice({ meterProvider });
    cleanups.push(() => metrics.stop());
    const a = createLimiter({ store: memoryStore({ clock: () => NOW_MS }), policies });
    const b = createLimiter({ store: memoryStore({ clock: () => NOW_MS }), policies });
    await a.take("k");
    await b.take("k");
    const allowed = {
      "sluice.operation": "take",
      "sluice.outcome": "allowed",
      "sluice.degraded": false,
    };
    expect(await value(metricNames.decisions, allowed)).toBe(2);

    metrics.stop();
    metrics.stop();
    await a.take("k");
    expect(await value(metricNames.decisions, allowed)).toBe(2);
  });

  it("counts store errors by code and handling, and shows the breaker open, then closed", async () => {
    const { meterProvider, value } = recorder();
    const store = flakyStore();
    const limiter = createLimiter({
      store,
      policies,
      onStoreError: "deny",
      breaker: { failures: 2, probeMs: 1 },
    });
    const metrics = instrumentSluice({ meterProvider, limiter });
    cleanups.push(() => metrics.stop());
    const open = { "sluice.store": "flaky" };

    await limiter.take("k");
    store.down = true;
    const down = new Promise((resolve) => limiter.on("storeDown", resolve));
    for (let i = 0; i < 2; i++) expect((await limiter.take("k")).degraded).toBe(true);
    await down;

    expect(
      await value(metricNames.storeErrors, {
        "sluice.operation": "take",
        "sluice.store": "flaky",
        "error.type": "STORE_UNAVAILABLE",
        "sluice.handling": "deny",
      }),
    ).toBe(2);
    expect(await value(metricNames.breakersOpen, open)).toBe(1);
    const degraded = {
      "sluice.operation": "take",
      "sluice.outcome": "refused",
      "sluice.degraded": true,
    };
    expect(await value(metricNames.decisions, degraded)).toBeGreaterThanOrEqual(2);

    store.down = false;
    const up = new Promise((resolve) => limiter.on("storeUp", resolve));
    let isUp = false;
    void up.then(() => {
      isUp = true;
    });
    // The probe goes out with a decision once probeMs has passed; keep deciding until it has.
    for (let i = 0; i < 500 && !isUp; i++) {
      await limiter.take("k");
      await new Promise((r) => setTimeout(r, 2));
    }
    await up;
    expect(await value(metricNames.breakersOpen, open)).toBe(0);
  });

  it("refuses an unknown option with a hint, and a value of the wrong type", () => {
    const bad = (options: unknown) => {
      try {
        instrumentSluice(options as never);
      } catch (e) {
        return (e as ConfigError).issues;
      }
      throw new Error("accepted");
    };
    expect(bad({ meterProvder: {} })).toEqual([
      { path: "meterProvder", message: 'unknown option (did you mean "meterProvider"?)' },
    ]);
    expect(bad({ limiter: {} })[0]?.path).toBe("limiter");
    expect(bad({ attributes: { a: {} } })[0]?.path).toBe("attributes");
    expect(bad("yes")[0]?.message).toBe("options must be an object");
  });
});

describe("instrumentStore", () => {
  it("times every call of an in-process store, by store and operation", async () => {
    const { meterProvider, points } = recorder();
    const limiter = createLimiter({
      store: instrumentStore(memoryStore({ clock: () => NOW_MS }), { meterProvider }),
      policies,
    });
    for (let i = 0; i < 3; i++) await limiter.take("k");
    await limiter.peek("k");
    await limiter.reset("k");

    const byOp = new Map(
      (await points(metricNames.storeDuration)).map((p) => [
        p.attributes["sluice.operation"],
        p as DataPoint<Histogram>,
      ]),
    );
    expect(byOp.get("take")?.value.count).toBe(3);
    expect(byOp.get("peek")?.value.count).toBe(1);
    expect(byOp.get("reset")?.value.count).toBe(1);
    expect(byOp.get("take")?.attributes["sluice.store"]).toBe("memory");
  });

  it("records a failed remote call with its error type, and traces calls as client spans", async () => {
    const { meterProvider, points } = recorder();
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    cleanups.push(() => tracerProvider.shutdown());
    const flaky = flakyStore();
    const limiter = createLimiter({
      store: instrumentStore(flaky, { meterProvider, tracerProvider }),
      policies,
      onStoreError: "allow",
      breaker: false,
    });
    await limiter.take("k");
    flaky.down = true;
    expect((await limiter.take("k")).degraded).toBe(true);

    const take = (await points(metricNames.storeDuration)) as DataPoint<Histogram>[];
    const ok = take.find((p) => p.attributes["error.type"] === undefined);
    const failed = take.find((p) => p.attributes["error.type"] === "Error");
    expect(ok?.value.count).toBe(1);
    expect(failed?.value.count).toBe(1);
    expect(failed?.attributes).toMatchObject({
      "sluice.store": "flaky",
      "sluice.operation": "take",
    });

    const finished = spans.getFinishedSpans();
    expect(finished.map((s) => [s.name, s.status.code])).toEqual([
      ["sluice.store take", 0],
      ["sluice.store take", 2],
    ]);
    expect(finished[1]?.attributes).toMatchObject({
      "sluice.store": "flaky",
      "error.type": "Error",
    });
  });

  it("keeps the store's capabilities and optional methods", async () => {
    const store = memoryStore();
    const wrapped = instrumentStore(store);
    expect(wrapped.capabilities).toBe(store.capabilities);
    expect(wrapped.decideNow === undefined).toBe(store.decideNow === undefined);
    expect(wrapped.close === undefined).toBe(store.close === undefined);
    const bare: Store = { capabilities: store.capabilities, execute: (r) => store.execute(r) };
    const w = instrumentStore(bare);
    expect(w.decideNow).toBeUndefined();
    expect(w.migrate).toBeUndefined();
    expect(() => instrumentStore({} as Store)).toThrow(/must be a Store/);
    expect(() => instrumentStore(store, { span: true } as never)).toThrow(/did you mean "spans"/);
  });
});

describe("diagnosticsChannels", () => {
  it("names the channels a limiter publishes on", async () => {
    const seen: unknown[] = [];
    const listener = (message: unknown) => seen.push(message);
    subscribe(diagnosticsChannels.decision, listener);
    try {
      const limiter = createLimiter({ store: memoryStore({ clock: () => NOW_MS }), policies });
      await limiter.take("k");
    } finally {
      unsubscribe(diagnosticsChannels.decision, listener);
    }
    expect(seen).toMatchObject([{ op: "take", key: "k", cost: 1, decision: { allowed: true } }]);
  });
});
