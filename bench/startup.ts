/**
 * Process start-up of the CLI: `inband-agent --version` and a BMC read
 * (`user list` on the simulated BMC) beside a bare `node -e 0`, the floor
 * under any Node command on this machine (exec, V8, Node's own bootstrap).
 * A/B rounds alternate so a noisy machine weighs on each side alike.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { run } from './change-runners.js';
import { projectRoot } from './daemon.js';
import { summarize, type Row } from './lib.js';

async function timed(args: readonly string[]): Promise<number> {
  const s = performance.now();
  await run(process.execPath, args);
  return performance.now() - s;
}

export async function benchStartup(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: unknown }> {
  const rounds = opts.quick ? 5 : 20;
  const bin = join(projectRoot(), 'bin', 'inband-agent.js');
  const sides = {
    floor: ['-e', '0'],
    version: [bin, '--version'],
    userList: [bin, 'user', 'list', '--backend', 'simulated'],
  } as const;
  const samples: Record<keyof typeof sides, number[]> = { floor: [], version: [], userList: [] };
  // One uncounted warm-up round (page cache), then alternate.
  for (let i = -1; i < rounds; i++) {
    for (const k of Object.keys(sides) as (keyof typeof sides)[]) {
      const ms = await timed(sides[k]);
      if (i >= 0) samples[k].push(ms);
    }
  }
  const floor = summarize(samples.floor);
  const section = 'start-up (CLI process)';
  const peer = 'node -e 0 (floor)';
  const mm = (k: keyof typeof sides): string => `ours min ${summarize(samples[k]).min.toFixed(0)}, max ${summarize(samples[k]).max.toFixed(0)}; floor min ${floor.min.toFixed(0)}`;
  return {
    rows: [
      { section, what: `exec → exit, median of ${rounds} A/B rounds (${mm('version')}; target ours ≤ 1.15× the floor)`, ours: 'inband-agent --version', oursValue: summarize(samples.version).median,
        peer, peerValue: floor.median, unit: 'ms', better: 'lower' },
      { section, what: `exec → exit, median of ${rounds} A/B rounds (${mm('userList')})`, ours: 'inband-agent user list --backend simulated', oursValue: summarize(samples.userList).median,
        peer, peerValue: floor.median, unit: 'ms', better: 'lower' },
    ],
    raw: { rounds, samples },
  };
}
