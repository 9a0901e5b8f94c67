import { channel } from "node:diagnostics_channel";
import type { SluiceError } from "../errors.js";
import type { Key } from "../keys.js";
import type { Decision } from "./decision.js";
import type { Observation } from "./observation.js";

/** Events a Limiter emits. Payloads are built only when someone listens. */
export interface LimiterEvents {
  /** Every decision returned by take, peek, tryAcquire (also inside wait/acquire). */
  decision: { op: "take" | "peek" | "tryAcquire"; key: Key; cost: number; decision: Decision };
  /** A store call failed or timed out; `handling` says what onStoreError did. */
  storeError: {
    op: string;
    key: Key | undefined;
    error: SluiceError;
    store: string;
    handling: "deny" | "allow" | "throw" | "fallback" | "ignored";
  };
  /** A reconcile observation that was not applied (unknown policy). */
  observationIgnored: { key: Key; observation: Observation; reason: string };
  /** The fallback store took over, or the primary answered again. */
  fallback: { active: boolean; store: string };
  /**
   * The breaker opened: the store failed `failures` times in a row (`error`: the last failure).
   * Until `storeUp`, decisions follow onStoreError without calling the store.
   */
  storeDown: { store: string; failures: number; error: SluiceError };
  /** The breaker closed: a probe (or a call) succeeded after `downMs` ms. */
  storeUp: { store: string; downMs: number };
}

/** The name of a limiter event: a key of {@link LimiterEvents}. */
export type LimiterEventName = keyof LimiterEvents;
type Listener<E extends LimiterEventName> = (payload: LimiterEvents[E]) => void;

/**
 * The `node:diagnostics_channel` name of each limiter event. Every limiter of the process (ESM
 * and CJS builds alike) publishes its events there with the same payloads as `limiter.on`, so a
 * tracer or metrics exporter can listen without a reference to any limiter.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import { diagnosticsChannels, type LimiterEvents } from "@sluice/core";
 *
 * subscribe(diagnosticsChannels.storeDown, (message) => {
 *   const { store, failures } = message as LimiterEvents["storeDown"];
 *   console.warn(`${store} store down after ${failures} failures`);
 * });
 * ```
 */
export const diagnosticsChannels = {
  decision: "sluice:decision",
  storeError: "sluice:store-error",
  observationIgnored: "sluice:observation-ignored",
  fallback: "sluice:fallback",
  storeDown: "sluice:store-down",
  storeUp: "sluice:store-up",
} as const satisfies Record<LimiterEventName, string>;

/** The channels themselves; check `hasSubscribers` before building a payload. */
export const channels = {
  decision: channel(diagnosticsChannels.decision),
  storeError: channel(diagnosticsChannels.storeError),
  observationIgnored: channel(diagnosticsChannels.observationIgnored),
  fallback: channel(diagnosticsChannels.fallback),
  storeDown: channel(diagnosticsChannels.storeDown),
  storeUp: channel(diagnosticsChannels.storeUp),
} as const satisfies Record<LimiterEventName, unknown>;

/** A small typed emitter. `wants(event)` costs one property read when nobody listens. */
export class Emitter {
  private readonly listeners: { [E in LimiterEventName]?: Set<Listener<E>> } = {};

  on<E extends LimiterEventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners[event] as Set<Listener<E>> | undefined;
    if (!set) {
      set = new Set();
      (this.listeners as Record<string, unknown>)[event] = set;
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<E extends LimiterEventName>(event: E, listener: Listener<E>): void {
    const set = this.listeners[event] as Set<Listener<E>> | undefined;
    if (!set) return;
    set.delete(listener);
    if (set.size === 0) delete this.listeners[event];
  }

  wants(event: LimiterEventName): boolean {
    return this.listeners[event] !== undefined || channels[event].hasSubscribers;
  }

  emit<E extends LimiterEventName>(event: E, payload: LimiterEvents[E]): void {
    const set = this.listeners[event] as Set<Listener<E>> | undefined;
    if (set) {
      for (const l of set) {
        try {
          l(payload);
        } catch (error) {
          // A listener's bug must not break a decision; surface it asynchronously.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    }
    const ch = channels[event];
    if (ch.hasSubscribers) ch.publish(payload);
  }
}
