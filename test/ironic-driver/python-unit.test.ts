/**
 * The Ironic driver's Python unit tests (ironic-driver/inband_ironic/tests:
 * unittest + mock, Ironic's own classes with task manager doubles), run with
 * the system Python that runs Debian's Ironic, so `npm test` and CI run them.
 * Skipped, saying why, only where python3-ironic is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ironicAvailability, SYSTEM_PYTHON } from '../harness/ironic.js';
import { projectRoot } from '../harness/e2e.js';

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

describe('ironic-driver/install.sh', () => {
  it('the installed package carries the shared floor\'s files and reads them from its own data/', { skip }, () => {
    const root = projectRoot();
    const work = mkdtempSync(join(tmpdir(), 'inband-ironic-install-'));
    try {
      const site = join(work, 'site');
      const inst = spawnSync('/bin/sh', [join(root, 'ironic-driver', 'install.sh'), '--target', site], { encoding: 'utf8' });
      assert.equal(inst.status, 0, inst.stderr);
      for (const f of ['credential-contract.json', 'rotation-failures.json']) {
        assert.equal(readFileSync(join(site, 'inband_ironic', 'data', f), 'utf8'), readFileSync(join(root, 'service', f), 'utf8'), f);
      }
      // Run from elsewhere, so only the installed copy can be found.
      const r = spawnSync(SYSTEM_PYTHON, ['-B', '-c', [
        'from inband_ironic import contract, shared_data, sealing',
        'print(shared_data.path("credential-contract")); print(shared_data.path("rotation-failures"))',
        'print(contract.check_username("ironic_b"), sealing.SEALED_PURPOSE)',
      ].join('\n')], { cwd: work, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONPATH: site, HOME: work } });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), [
        join(site, 'inband_ironic', 'data', 'credential-contract.json'),
        join(site, 'inband_ironic', 'data', 'rotation-failures.json'),
        'ironic_b set_bmc_credentials',
      ]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
