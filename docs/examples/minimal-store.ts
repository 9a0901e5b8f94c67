import {
  evaluate,
  type PolicyStateRecord,
  type Store,
  type StoreRequest,
  type StoreResult,
} from "@sluice/core/store";

/**
 * The smallest complete store: state in a Map, every decision by the reference math. It deletes
 * state that is back to default when it writes; a real store also expires state that drifts back
 * to default untouched (see `dueMs`).
 */
export function mapStore(clock: () => number = Date.now): Store {
  const entries = new Map<string, PolicyStateRecord>();
  return {
    capabilities: { name: "map", clock: "injectable", local: true, requiresPartition: false },
    execute(request: StoreRequest): StoreResult {
      const stored = request.keys.map((k) => entries.get(k));
      const { result, write, states } = evaluate(request, stored, Math.floor(clock()));
      if (write) {
        request.keys.forEach((key, i) => {
          const s = states[i];
          if (s === undefined) entries.delete(key);
          else entries.set(key, s);
        });
      }
      return result;
    },
  };
}
