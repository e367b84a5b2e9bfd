/**
 * agent/memory.ts: the daemon trims the C heap after V8's full collections,
 * watching for them only while it is idle.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { giveBackFreeMemory, watchFullGc, type FullGcWatcher } from '../../agent/memory.js';

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

describe('memory give-back', () => {
  it('watches full collections only once a whole interval passed without a request, and trims after them, rate-limited', () => {
    let requests = 0;
    let clock = 0;
    let released = 0;
    let check: () => void = () => assert.fail('no check scheduled');
    let stopped = false;
    const w = manualWatcher();
    const g = giveBackFreeMemory(() => { released++; return true; }, {
      activity: () => requests,
      watch: w.watch,
      now: () => clock,
      minTrimIntervalMs: 1_000,
      every: (fn) => { check = fn; return () => { stopped = true; }; },
    });
    assert.equal(w.watching, false, 'not at start');
    check();
    assert.equal(w.watching, true, 'after a quiet interval');
    w.fire();
    assert.equal(released, 1, 'a full collection of the idle daemon: trimmed');
    w.fire();
    assert.equal(released, 1, 'not again within the minimum interval');
    clock += 1_000;
    w.fire();
    assert.equal(released, 2);
    requests++;
    check();
    assert.equal(w.watching, false, 'a request stops the watch');
    for (let i = 0; i < 3; i++) {
      requests++;
      check();
      assert.equal(w.watching, false, 'and it stays off while requests arrive');
    }
    check();
    assert.equal(w.watching, true, 'back on once they stop');
    g.stop();
    assert.equal(stopped, true, 'stop() ends the checks');
    assert.equal(w.watching, false, 'and the watch');
    assert.deepEqual(g.counts, { trims: 2, released: 2 });
  });

  it('a trim that throws or gives nothing back changes nothing else', async () => {
    let calls = 0;
    const w = manualWatcher();
    const g = giveBackFreeMemory(() => { calls++; if (calls === 1) throw new Error('boom'); return false; }, { activity: () => 0, watch: w.watch, intervalMs: 5, minTrimIntervalMs: 0 });
    await tick(20);
    w.fire();
    w.fire();
    assert.deepEqual(g.counts, { trims: 2, released: 0 });
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
