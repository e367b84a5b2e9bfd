/**
 * Core dumps must not hold the agent's secrets: the shipped unit sets
 * LimitCORE=0, and the daemon makes itself non-dumpable at start through the
 * native addon's prctl shim (checked in a child process, with the kernel's own
 * PR_GET_DUMPABLE answer and the child's core limit untouched).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeNonDumpable } from '../../agent/harden.js';
import { addonMissing, projectRoot } from '../native/project.js';

test('the shipped unit sets LimitCORE=0', () => {
  const unit = readFileSync(path.join(projectRoot(), 'systemd', 'inband-agent.service'), 'utf8');
  assert.match(unit, /^LimitCORE=0$/m);
});

test('the daemon\'s start makes the process non-dumpable (prctl through the addon)', { skip: addonMissing() }, () => {
  const harden = pathToFileURL(path.join(projectRoot(), 'dist', 'agent', 'harden.js')).href;
  const kcs = pathToFileURL(path.join(projectRoot(), 'dist', 'ipmi-kcs', 'kcs-native.js')).href;
  const script = `
    const { makeNonDumpable } = await import(${JSON.stringify(harden)});
    const { loadNativeAddon } = await import(${JSON.stringify(kcs)});
    const lines = [];
    const outcome = await makeNonDumpable({ info: (m) => lines.push(m), warn: (m) => lines.push('WARN ' + m) });
    const addon = (await loadNativeAddon()).addon;
    // Setting it again to 0 returns the kernel's PR_GET_DUMPABLE: still 0.
    console.log(JSON.stringify({ outcome, again: addon.setDumpable(false), lines }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: projectRoot() });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { outcome: string; again: number; lines: string[] };
  assert.equal(out.outcome, 'non-dumpable', out.lines.join('\n'));
  assert.equal(out.again, 0);
  assert.match(out.lines.join('\n'), /core dumps off/);
});

test('without the addon it says so, and what it relies on instead', async () => {
  const lines: string[] = [];
  const outcome = await makeNonDumpable({ info: (m) => lines.push(m), warn: (m) => lines.push(m) }, async () => ({ ok: false, error: 'addon not built: build/Release/ipmi_kcs.node does not exist' }));
  assert.equal(outcome, 'addon-missing');
  assert.match(lines.join('\n'), /cannot make the process non-dumpable: addon not built.*LimitCORE=0/);
});
