/**
 * The Ironic driver's Python unit tests (ironic-driver/inband_ironic/tests:
 * unittest + mock, Ironic's own classes with task manager doubles), run with
 * the system Python that runs Debian's Ironic, so `npm test` and CI run them.
 * Skipped, saying why, only where python3-ironic is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ironicAvailability, SYSTEM_PYTHON } from '../harness/ironic.js';

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p) && JSON.parse(readFileSync(p, 'utf8')).name === 'inband-agent') return dir;
    dir = dirname(dir);
  }
  throw new Error('project root not found');
}

const avail = ironicAvailability();
const skip = avail.available ? false : `the driver's Python tests need python3-ironic: ${avail.reason}`;

describe('ironic-driver Python unit tests', () => {
  it('/usr/bin/python3 -m unittest discover passes', { skip }, () => {
    const cwd = join(projectRoot(), 'ironic-driver');
    const r = spawnSync(SYSTEM_PYTHON, ['-B', '-m', 'unittest', 'discover', '-s', 'inband_ironic/tests', '-t', '.', '-v'], {
      cwd, encoding: 'utf8', timeout: 300_000,
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONPATH: cwd, HOME: cwd },
    });
    const summary = /Ran (\d+) tests?/.exec(r.stderr);
    console.log(`# ${summary ? summary[0] : 'no summary'}: ${r.status === 0 ? 'OK' : 'FAILED'}`);
    assert.equal(r.status, 0, `python unittest failed:\n${r.stderr.slice(-8000)}`);
    assert.ok(summary && Number(summary[1]) > 0, 'some tests ran');
  });
});
