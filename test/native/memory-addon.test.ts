/**
 * agent_memory.node (agent/native/memory.cc), the real addon in this process:
 * a compaction releases V8's free pages where a plain full collection keeps
 * them, and malloc_trim gives the C heap's free pages back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadMemoryAddon, type MemoryAddon } from '../../agent/memory.js';
import { projectRoot } from './project.js';

const built = path.join(projectRoot(), 'build', 'Release', 'agent_memory.node');
const skip = process.platform !== 'linux' ? 'Linux only' : existsSync(built) ? undefined : `${built} is missing: run \`node scripts/build-addon.mjs\``;
const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

describe('agent_memory addon', { skip }, () => {
  const load = (): MemoryAddon => {
    const l = loadMemoryAddon();
    assert.ok(l.ok, l.ok ? '' : l.error);
    return l.addon;
  };

  it('is found from the compiled agent and exports only compactHeap and releaseFreeMemory', () => {
    assert.deepEqual(Object.keys(load()).sort(), ['compactHeap', 'releaseFreeMemory']);
  });

  it('compactHeap gives back the young generation a full collection keeps grown, and leaves live objects whole', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const newSpace = (): number => getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_size;
    const live = Array.from({ length: 1000 }, (_, i) => ({ i, s: `live ${i}` }));
    // A burst that survives scavenges grows the young generation, as start-up does.
    let burst: unknown[] | null = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `burst ${i}` }));
    assert.equal(burst.length, 300_000);
    burst = null;
    gc();
    gc();
    const afterGc = newSpace();
    load().compactHeap();
    const afterCompact = newSpace();
    assert.ok(afterCompact < afterGc, `the young generation shrank: ${afterGc} -> ${afterCompact} bytes (full collections alone kept it)`);
    assert.equal(live[999]!.s, 'live 999');
    assert.equal(live.reduce((a, o) => a + o.i, 0), 499_500);
  });

  it('releaseFreeMemory returns whether pages went back (true on glibc) and does not grow the process', () => {
    const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
    const keep = Buffer.allocUnsafeSlow(4000).fill(2);
    const before = rssKiB();
    const released = load().releaseFreeMemory();
    assert.equal(typeof released, 'boolean');
    if (glibc) assert.equal(released, true, 'glibc: something went back');
    assert.ok(rssKiB() <= before, `VmRSS did not grow: ${before} -> ${rssKiB()} KiB`);
    assert.equal(keep[0], 2, 'live memory is untouched');
  });
});
