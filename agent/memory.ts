/**
 * Gives the C heap's free pages back to the kernel after V8's collections
 * of an idle daemon.
 *
 * Why: glibc's free() returns memory only from the top of the main heap. What
 * start-up, V8's compiler and a burst of requests freed in the middle, and in
 * the worker threads' arenas, stays resident. A deploy ramdisk holds the
 * whole root filesystem in the same RAM, so an idle daemon should not keep
 * it. Measured (idle daemon, simulated BMC, VmRSS 12 s after its first
 * answer): malloc_trim(0) right after V8's idle collection gave back 1.1 MiB
 * of the 3.8 MiB main heap; at 1 s, before that collection, 0.4 MiB; at 10 s,
 * on a timer that sometimes ran before it, 0.6.
 *
 * When: V8 collects an idle heap by itself (its memory reducer, ~8 s after
 * the last burst), and that full collection is what frees the large C
 * allocations (compiler zones, code-cache buffers). So once a check finds no
 * request for a whole {@link CHECK_INTERVAL_MS}, the daemon watches V8's full
 * collections, and trims after each (at most once per
 * {@link MIN_TRIM_INTERVAL_MS}); the first request it sees stops the watch.
 * Watching only while idle matters: a perf_hooks GC observer makes an entry
 * for every scavenge, and kept on under load it cost ~4% of status
 * requests/s at one connection. A trim walks the arenas under their locks,
 * well under a millisecond for the daemon's few MiB.
 *
 * Where: the native addon's releaseFreeMemory (Node has no malloc_trim).
 * Without the addon, or on a C library without malloc_trim (musl), the daemon
 * runs as before.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export const CHECK_INTERVAL_MS = 2_000;
export const MIN_TRIM_INTERVAL_MS = 5_000;

export interface MemoryGiveBack {
  /** Trims made so far, and how many of them gave pages back. */
  readonly counts: { trims: number; released: number };
  stop(): void;
}

/** Calls `onFullGc` after each of V8's full collections until the returned function is called. */
export type FullGcWatcher = (onFullGc: () => void) => () => void;

export const watchFullGc: FullGcWatcher = (onFullGc) => {
  const obs = new PerformanceObserver((list) => {
    if (list.getEntries().some(isFullGc)) onFullGc();
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => obs.disconnect();
};

function isFullGc(e: PerformanceEntry): boolean {
  return (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}

export interface GiveBackOptions {
  /** A count that grows with every request received (the daemon's front counts them). */
  activity: () => number;
  watch?: FullGcWatcher;
  now?: () => number;
  intervalMs?: number;
  minTrimIntervalMs?: number;
  /** Runs `check` every `ms` without holding the process open; returns its stop. */
  every?: (check: () => void, ms: number) => () => void;
}

const unrefInterval = (check: () => void, ms: number): (() => void) => {
  const timer = setInterval(check, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export function giveBackFreeMemory(release: () => boolean, opts: GiveBackOptions): MemoryGiveBack {
  const now = opts.now ?? Date.now;
  const watch = opts.watch ?? watchFullGc;
  const minTrim = opts.minTrimIntervalMs ?? MIN_TRIM_INTERVAL_MS;
  const counts = { trims: 0, released: 0 };
  let seen = opts.activity();
  let unwatch: (() => void) | null = null;
  let last = -Infinity;
  const trim = (): void => {
    if (now() - last < minTrim) return;
    last = now();
    counts.trims++;
    try {
      if (release()) counts.released++;
    } catch {
      // A trim that fails changes nothing the daemon relies on.
    }
  };
  const every = opts.every ?? unrefInterval;
  const stopChecks = every(() => {
    const current = opts.activity();
    if (current !== seen) {
      seen = current;
      unwatch?.();
      unwatch = null;
    } else if (!unwatch) {
      unwatch = watch(trim);
    }
  }, opts.intervalMs ?? CHECK_INTERVAL_MS);
  return {
    counts,
    stop() {
      stopChecks();
      unwatch?.();
      unwatch = null;
    },
  };
}
