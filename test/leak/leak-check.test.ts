/**
 * Suite-wide check that no secret leaked. Runs last (scripts/run-tests.mjs), over:
 * - every log line captured under $INBAND_TEST_ARTIFACTS/logs (agents, services, CLIs run by tests),
 * - the test runner's whole output (errors, assertion messages, anything printed),
 * - the process argument lists sampled from /proc/*\/cmdline every 20 ms during the run
 *   (a sample, not a record: test/secrets/exec-argv.test.ts records every exec of the
 *   product's spawning paths under strace),
 * for every secret the tests recorded with recordSecret(). A whole-suite run that
 * recorded no secret checked nothing, and fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.INBAND_TEST_ARTIFACTS;

function secrets(): string[] {
  if (!dir || !existsSync(join(dir, 'secrets.list'))) return [];
  return [...new Set(readFileSync(join(dir, 'secrets.list'), 'utf8').split('\n').filter(Boolean)
    .map((b64) => Buffer.from(b64, 'base64').toString('utf8')))];
}

function corpus(): Array<{ name: string; text: string }> {
  if (!dir) return [];
  const out: Array<{ name: string; text: string }> = [];
  for (const f of ['test-output.txt', 'cmdlines.txt']) {
    const p = join(dir, f);
    if (existsSync(p)) out.push({ name: f, text: readFileSync(p, 'utf8') });
  }
  const logs = join(dir, 'logs');
  if (existsSync(logs)) {
    for (const f of readdirSync(logs)) out.push({ name: `logs/${f}`, text: readFileSync(join(logs, f), 'utf8') });
  }
  return out;
}

test('no recorded secret appears in any log, test output or process argument list', (t) => {
  if (!dir) {
    t.skip('run through scripts/run-tests.mjs (npm test) to collect the suite-wide corpus');
    return;
  }
  const list = secrets();
  const files = corpus();
  t.diagnostic(`checked ${list.length} secrets against ${files.length} captured files (${files.reduce((n, f) => n + f.text.length, 0)} bytes)`);
  assert.ok(files.some((f) => f.name === 'cmdlines.txt'), 'the process-argument sample is missing');
  if (process.env.INBAND_TEST_FULL === '1') {
    assert.ok(list.length > 0, 'the whole suite ran but recorded no secret: the check would pass vacuously');
    assert.ok(files.some((f) => f.name.startsWith('logs/')), 'the whole suite ran but captured no log');
  }
  const leaks: string[] = [];
  for (const s of list) {
    for (const f of files) {
      if (f.text.includes(s)) leaks.push(`a secret of length ${s.length} appears in ${f.name}`);
    }
  }
  assert.deepEqual(leaks, []);
});
