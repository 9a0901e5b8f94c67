/** Told when a signal it watches aborts. */
export interface AbortWatcher {
  aborted(reason: unknown): void;
}

interface Watched {
  readonly watchers: Set<AbortWatcher>;
  readonly onAbort: () => void;
}

/**
 * Who watches each signal, behind one listener per signal however many waits share it: a
 * listener per wait made Node warn (MaxListenersExceededWarning) past ten waits on one signal.
 */
const watched = new WeakMap<AbortSignal, Watched>();

export function watchAbort(signal: AbortSignal, watcher: AbortWatcher): void {
  let entry = watched.get(signal);
  if (entry === undefined) {
    const watchers = new Set<AbortWatcher>();
    const onAbort = () => {
      // Forgotten first: a watcher that unwatches while it is told finds nothing to remove.
      watched.delete(signal);
      for (const w of watchers) w.aborted(signal.reason);
    };
    entry = { watchers, onAbort };
    watched.set(signal, entry);
    signal.addEventListener("abort", onAbort, { once: true });
  }
  entry.watchers.add(watcher);
}

export function unwatchAbort(signal: AbortSignal, watcher: AbortWatcher): void {
  const entry = watched.get(signal);
  if (entry === undefined || !entry.watchers.delete(watcher) || entry.watchers.size > 0) return;
  // The last watcher left: the signal (which may live on, a request's or a process's) keeps
  // nothing of ours.
  watched.delete(signal);
  signal.removeEventListener("abort", entry.onAbort);
}
