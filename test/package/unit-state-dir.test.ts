/**
 * The packaged unit keeps the crash journal where a restart does not remove
 * it (issue #11 item 6): its state_dir, resolved from what the package
 * installs, is the unit's StateDirectory=, not its RuntimeDirectory=. The
 * sources are checked here; test/package/artifact.test.ts checks the same on
 * the installed release tree, and test/qemu/crash-journal-systemd.test.ts
 * kills the agent under that unit and a real systemd.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { OPTIONS } from '../../agent/config.js';
import { projectRoot } from './artifact.js';
import { packagedStateDir, unitSettings } from './unit-state-dir.js';

const root = projectRoot();
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');
/** Where scripts/package.mjs installs each file the unit names (its `put(...)` calls). */
const INSTALLED_FROM: Record<string, string> = {
  '/etc/inband-agent/agent.json': 'scripts/package/agent.json',
  '/etc/default/inband-agent': 'systemd/inband-agent.default',
};

describe('the packaged unit\'s state_dir', () => {
  const unit = read('systemd/inband-agent.service');

  it('scripts/package.mjs installs the files the unit names from these sources', () => {
    const pkg = read('scripts/package.mjs');
    for (const [dest, src] of Object.entries(INSTALLED_FROM)) {
      const [dir, file] = [path.dirname(src), path.basename(src)];
      const put = new RegExp(`put\\(path\\.join\\(root, ${dir.split('/').map((p) => `'${p}'`).join(', ')}, '${file.replace('.', '\\.')}'\\), '${dest.slice(1)}'`);
      assert.match(pkg, put, `package.mjs installs ${src} as ${dest}`);
    }
  });

  it('is the unit\'s StateDirectory (/var/lib/inband-agent), never its RuntimeDirectory', () => {
    const verdict = packagedStateDir({
      unit,
      readFile: (p) => (INSTALLED_FROM[p] && existsSync(path.join(root, INSTALLED_FROM[p])) ? read(INSTALLED_FROM[p]) : undefined),
      defaultStateDir: String(OPTIONS.state_dir.default),
    });
    assert.deepEqual(verdict.problems, []);
    assert.equal(verdict.stateDir, '/var/lib/inband-agent');
    assert.equal(verdict.source, '/etc/inband-agent/agent.json');
    assert.deepEqual(verdict.stateDirectories, ['/var/lib/inband-agent']);
    assert.deepEqual(verdict.runtimeDirectories, ['/run/inband-agent']);
  });

  it('the built-in default is the same directory, so a config without state_dir keeps it there', () => {
    assert.equal(OPTIONS.state_dir.default, '/var/lib/inband-agent');
  });

  it('the unit restarts on a crash and does not preserve its RuntimeDirectory (so the journal must not be there)', () => {
    const s = unitSettings(unit);
    assert.deepEqual(s.get('Restart'), ['on-failure']);
    assert.equal(s.get('RuntimeDirectoryPreserve'), undefined);
  });

  it('the checker refuses the layout that lost the journal: state_dir in /run/inband-agent', () => {
    const verdict = packagedStateDir({
      unit,
      readFile: (p) => (p === '/etc/inband-agent/agent.json' ? JSON.stringify({ state_dir: '/run/inband-agent' }) : undefined),
      defaultStateDir: '/var/lib/inband-agent',
    });
    assert.equal(verdict.problems.length, 2, verdict.problems.join('; '));
    assert.match(verdict.problems[1]!, /RuntimeDirectory= \/run\/inband-agent, which systemd removes on every stop/);
  });

  it('the checker sees a --state-dir in ExecStart and one in the environment file', () => {
    const flagged = unit.replace(/^ExecStart=(.*)$/m, 'ExecStart=$1 --state-dir /run/inband-agent/j');
    assert.equal(packagedStateDir({ unit: flagged, readFile: () => undefined, defaultStateDir: '/var/lib/inband-agent' }).problems.length, 3);
    const env = packagedStateDir({ unit, readFile: (p) => (p === '/etc/default/inband-agent' ? 'INBAND_AGENT_STATE_DIR=/run/inband-agent\n'
      : p === '/etc/inband-agent/agent.json' ? read('scripts/package/agent.json') : undefined), defaultStateDir: '/var/lib/inband-agent' });
    assert.equal(env.source, '/etc/default/inband-agent');
    assert.equal(env.problems.length, 2);
  });
});
