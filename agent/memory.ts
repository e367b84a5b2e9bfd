/**
 * Gives memory back to the kernel once the daemon idles.
 *
 * Why: a deploy ramdisk holds the whole root filesystem in the same RAM, and
 * an agent that waits for the conductor idles most of its life. Two holders
 * keep what the daemon no longer uses:
 * - V8 keeps the pages its start-up garbage filled (the compiler's, the code
 *   cache's, the modules' top-level work) until its memory reducer runs, ~8 s
 *   after the last burst, and a plain full collection does not release them;
 * - glibc's free() returns memory only from the top of the main heap: what
 *   was freed in the middle, and in the worker threads' arenas, stays.
 *
 * What: once start-up has settled (no request for {@link QUIET_MS}), the
 * daemon compacts V8's heap (LowMemoryNotification) and trims malloc, once.
 * Measured (simulated BMC, VmRSS 2 s after the first answer): 52.6 → 49.7
 * MiB; the compaction takes ~25 ms of the main thread, and it drops compiled
 * bytecode, so the first command after it takes a few ms more (get_info 10–13
 * → 15–17 ms, then as before). Later, whenever a check finds the daemon idle,
 * it watches V8's own full collections (its memory reducer's among them) and
 * trims malloc after each, at most once per {@link MIN_TRIM_INTERVAL_MS}.
 * Watching only while idle matters: a perf_hooks GC observer makes an entry
 * for every scavenge, and kept on under load it cost ~4% of status
 * requests/s at one connection.
 *
 * Where: agent/native/memory.cc (Node has no API for either). It is built
 * for the Node it runs on; without it the daemon runs as before.
 */
import type { PerformanceEntry } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** How often the daemon looks at its request count. */
export const CHECK_INTERVAL_MS = 250;
/** No request for this long: start-up has settled, or the daemon idles again. */
export const QUIET_MS = 1_000;
export const MIN_TRIM_INTERVAL_MS = 5_000;

/** agent_memory.node's exports. */
export interface MemoryAddon {
  /** V8's LowMemoryNotification: full collections, compaction, free pages released. */
  compactHeap(): void;
  /** glibc's malloc_trim(0); false where there is none. */
  releaseFreeMemory(): boolean;
}

export interface MemoryGiveBack {
  /** Heap compactions, malloc trims, and how many trims gave pages back. */
  readonly counts: { compactions: number; trims: number; released: number };
  stop(): void;
}

/** Calls `onFullGc` after each of V8's full collections until the returned function is called. */
export type FullGcWatcher = (onFullGc: () => void) => () => void;

// node:perf_hooks loads when the daemon first goes idle, not on its way to listening.
let perfHooks: typeof import('node:perf_hooks') | undefined;

export const watchFullGc: FullGcWatcher = (onFullGc) => {
  perfHooks ??= createRequire(import.meta.url)('node:perf_hooks') as typeof import('node:perf_hooks');
  const { constants } = perfHooks;
  const obs = new perfHooks.PerformanceObserver((list) => {
    if (list.getEntries().some((e) => isFullGc(e, constants.NODE_PERFORMANCE_GC_MAJOR))) onFullGc();
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => obs.disconnect();
};

function isFullGc(e: PerformanceEntry, major: number): boolean {
  return (e as { detail?: { kind?: number } }).detail?.kind === major;
}

const ADDON_FILE = path.join('build', 'Release', 'agent_memory.node');

/**
 * build/Release/agent_memory.node of this project (found from agent/ when run
 * from source, from dist/agent/ or dist/bundle/ when built), or why not.
 */
export function loadMemoryAddon(from = path.dirname(fileURLToPath(import.meta.url))): { ok: true; addon: MemoryAddon } | { ok: false; error: string } {
  for (const root of [path.resolve(from, '..'), path.resolve(from, '..', '..')]) {
    const file = path.join(root, ADDON_FILE);
    if (!existsSync(file)) continue;
    try {
      return { ok: true, addon: createRequire(import.meta.url)(file) as MemoryAddon };
    } catch (e) {
      return { ok: false, error: `${file} failed to load: ${(e as Error).message.split('\n')[0]}` };
    }
  }
  return { ok: false, error: `no ${ADDON_FILE} above ${from}` };
}

export interface GiveBackOptions {
  /** A count that grows with every request received (the daemon's front counts them). */
  activity: () => number;
  watch?: FullGcWatcher;
  now?: () => number;
  intervalMs?: number;
  quietMs?: number;
  minTrimIntervalMs?: number;
  /** Runs `check` every `ms` without holding the process open; returns its stop. */
  every?: (check: () => void, ms: number) => () => void;
  /** Told what the compaction gave back (a debug line in the daemon). */
  log?: (msg: string) => void;
  /** Resident memory in KiB (default: VmRSS of /proc/self/status). */
  rssKiB?: () => number;
}

function vmRssKiB(): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

const unrefInterval = (check: () => void, ms: number): (() => void) => {
  const timer = setInterval(check, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export function giveBackFreeMemory(addon: MemoryAddon, opts: GiveBackOptions): MemoryGiveBack {
  const now = opts.now ?? Date.now;
  const watch = opts.watch ?? watchFullGc;
  const quiet = opts.quietMs ?? QUIET_MS;
  const minTrim = opts.minTrimIntervalMs ?? MIN_TRIM_INTERVAL_MS;
  const counts = { compactions: 0, trims: 0, released: 0 };
  let seen = opts.activity();
  let lastChange = now();
  let compacted = false;
  let unwatch: (() => void) | null = null;
  let lastTrim = -Infinity;
  // Neither call changes anything the daemon relies on: one that throws is skipped.
  const trim = (force = false): void => {
    if (!force && now() - lastTrim < minTrim) return;
    lastTrim = now();
    counts.trims++;
    try {
      if (addon.releaseFreeMemory()) counts.released++;
    } catch {
      // as above
    }
  };
  const rss = opts.rssKiB ?? vmRssKiB;
  const compact = (): void => {
    counts.compactions++;
    const before = rss();
    const t = performance.now();
    try {
      addon.compactHeap();
    } catch {
      // as above
    }
    trim(true);
    const mib = (kib: number) => (kib / 1024).toFixed(1);
    opts.log?.(`start-up settled: V8's heap compacted and malloc trimmed in ${(performance.now() - t).toFixed(0)} ms, VmRSS ${mib(before)} -> ${mib(rss())} MiB`);
  };
  const stopChecks = (opts.every ?? unrefInterval)(() => {
    const current = opts.activity();
    if (current !== seen) {
      seen = current;
      lastChange = now();
      unwatch?.();
      unwatch = null;
      return;
    }
    if (now() - lastChange < quiet) return;
    if (!compacted) {
      compacted = true;
      compact();
    }
    unwatch ??= watch(() => trim());
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
