/**
 * agent/memory.ts: once start-up settles the daemon compacts V8's heap and
 * trims malloc, once; later it trims after V8's full collections, watching
 * for them only while it is idle.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { giveBackFreeMemory, watchFullGc, type FullGcWatcher, type MemoryAddon } from '../../agent/memory.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A watcher the test fires by hand; `watching` says whether the daemon is watching. */
function manualWatcher(): { watch: FullGcWatcher; fire(): void; readonly watching: boolean } {
  let cb: (() => void) | null = null;
  return {
    watch: (onFullGc) => {
      cb = onFullGc;
      return () => { cb = null; };
    },
    fire: () => cb?.(),
    get watching() {
      return cb !== null;
    },
  };
}

/** Checks run by hand, on a clock the test moves. */
function harness(addon: MemoryAddon, extra: { minTrimIntervalMs?: number } = {}) {
  const h = { requests: 0, clock: 0, stopped: false, lines: [] as string[], check: (): void => assert.fail('no check scheduled') };
  const w = manualWatcher();
  const g = giveBackFreeMemory(addon, {
    activity: () => h.requests,
    watch: w.watch,
    now: () => h.clock,
    quietMs: 1_000,
    minTrimIntervalMs: extra.minTrimIntervalMs ?? 5_000,
    every: (fn) => { h.check = fn; return () => { h.stopped = true; }; },
    log: (m) => h.lines.push(m),
    rssKiB: () => 2048,
  });
  /** Moves the clock by `ms` and runs one check. */
  const step = (ms: number): void => { h.clock += ms; h.check(); };
  return { h, w, g, step };
}

describe('memory give-back', () => {
  it('compacts once, when no request came for the quiet time, then trims after full collections while idle, rate-limited', () => {
    const calls: string[] = [];
    const { h, w, g, step } = harness({ compactHeap: () => calls.push('compact'), releaseFreeMemory: () => { calls.push('trim'); return true; } });
    step(250);
    h.requests++;
    step(250);
    step(900);
    assert.deepEqual(calls, [], 'nothing within the quiet time of the last request');
    assert.equal(w.watching, false);
    step(100);
    assert.deepEqual(calls, ['compact', 'trim'], 'start-up settled: the heap is compacted, then malloc trimmed');
    assert.equal(h.lines.length, 1);
    assert.match(h.lines[0]!, /^start-up settled: V8's heap compacted and malloc trimmed in \d+ ms, VmRSS 2\.0 -> 2\.0 MiB$/);
    assert.equal(w.watching, true, 'and full collections are watched');
    w.fire();
    assert.deepEqual(calls, ['compact', 'trim'], 'no trim within the minimum interval of the last');
    h.clock += 5_000;
    w.fire();
    assert.deepEqual(calls, ['compact', 'trim', 'trim']);
    h.requests++;
    step(250);
    assert.equal(w.watching, false, 'a request stops the watch');
    for (let i = 0; i < 6; i++) {
      h.requests++;
      step(250);
      assert.equal(w.watching, false, 'and it stays off while requests arrive');
    }
    step(250);
    step(250);
    step(250);
    assert.equal(w.watching, false, 'not before the quiet time');
    step(250);
    assert.equal(w.watching, true, 'back on once they stop');
    assert.deepEqual(calls, ['compact', 'trim', 'trim'], 'the compaction was once');
    g.stop();
    assert.equal(h.stopped, true, 'stop() ends the checks');
    assert.equal(w.watching, false, 'and the watch');
    assert.deepEqual(g.counts, { compactions: 1, trims: 2, released: 2 });
  });

  it('a compaction or trim that throws, or gives nothing back, changes nothing else', () => {
    let trims = 0;
    const { w, g, step } = harness({ compactHeap: () => { throw new Error('boom'); }, releaseFreeMemory: () => { trims++; if (trims === 1) throw new Error('boom'); return false; } }, { minTrimIntervalMs: 0 });
    step(1_000);
    assert.equal(w.watching, true);
    w.fire();
    assert.deepEqual(g.counts, { compactions: 1, trims: 2, released: 0 });
    g.stop();
  });

  it('the default watcher sees V8\'s full collections', async () => {
    // A gc() of a fresh context: V8 installs it for contexts made after the flag.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let seen = 0;
    const stop = watchFullGc(() => { seen++; });
    gc();
    await tick(50);
    stop();
    assert.ok(seen >= 1);
  });
});
