#!/usr/bin/env node
// Runs the compiled test suite (dist/test) with node's test runner, then the
// suite-wide secret-leak check over everything the run produced.
//
//   node scripts/run-tests.mjs [FILTER...]   only test files whose path contains a FILTER
//
// While the suite runs, this process samples every /proc/*/cmdline every 20 ms
// for the leak check. A sample can miss a process that lives less than that:
// the product's own spawning paths are recorded completely, exec by exec, by
// test/secrets/exec-argv.test.ts under strace.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const distTest = join(root, 'dist', 'test');
const filters = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...findTests(p));
    else if (ent.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

let files;
try {
  statSync(distTest);
  files = findTests(distTest);
} catch {
  console.error('run-tests: dist/test not found; run `npm run build` first (npm test does).');
  process.exit(2);
}
const leakCheck = files.filter((f) => f.includes(`${join('test', 'leak')}/`));
files = files.filter((f) => !leakCheck.includes(f));
if (filters.length) files = files.filter((f) => filters.some((flt) => relative(root, f).includes(flt)));
if (!files.length) {
  console.error(`run-tests: no test files match ${filters.join(' ')}`);
  process.exit(2);
}

const artifacts = mkdtempSync(join(tmpdir(), 'inband-test-'));
const env = { ...process.env, INBAND_TEST_ARTIFACTS: artifacts, INBAND_TEST_FULL: filters.length ? '0' : '1' };

// The real-Ironic stage runs whenever Debian's Ironic is installed
// (scripts/setup.sh --test installs it); otherwise its tests skip, saying so.
if (env.INBAND_TEST_IRONIC === undefined) {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import ironic.cmd.singleprocess'], { stdio: 'ignore' });
  env.INBAND_TEST_IRONIC = probe.status === 0 ? '1' : '0';
  console.log(env.INBAND_TEST_IRONIC === '1'
    ? '# real-Ironic stage: enabled (python3-ironic found)'
    : '# real-Ironic stage: SKIPPED, python3-ironic is not installed (scripts/install-ironic.sh installs it)');
}

// --- process-argument sampler -------------------------------------------------
const cmdlines = new Set();
function sample() {
  let pids;
  try { pids = readdirSync('/proc'); } catch { return; }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`);
      if (raw.length) cmdlines.add(raw.toString('utf8').replace(/\0/g, ' ').trim());
    } catch { /* gone */ }
  }
}
const sampler = setInterval(sample, 20);

function runNodeTest(testFiles, tapFile, concurrency) {
  return new Promise((resolve) => {
    const args = ['--test', `--test-concurrency=${concurrency}`,
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...testFiles];
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (d) => { chunks.push(d); process.stdout.write(d); });
    child.stderr.on('data', (d) => { chunks.push(d); process.stderr.write(d); });
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

function counts(tapFile) {
  let text = '';
  try { text = readFileSync(tapFile, 'utf8'); } catch { /* none */ }
  const grab = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) || [])[1] || 0);
  return { tests: grab('tests'), pass: grab('pass'), fail: grab('fail'), skipped: grab('skipped'), cancelled: grab('cancelled'), todo: grab('todo') };
}

const started = Date.now();
const concurrency = Number(process.env.INBAND_TEST_CONCURRENCY || 3);
const main = await runNodeTest(files, join(artifacts, 'main.tap'), concurrency);
writeFileSync(join(artifacts, 'test-output.txt'), main.output);
clearInterval(sampler);
sample();
writeFileSync(join(artifacts, 'cmdlines.txt'), [...cmdlines].join('\n') + '\n');

let leak = { code: 0 };
if (leakCheck.length) {
  console.log('\n# secret-leak check over logs, test output and process arguments');
  leak = await runNodeTest(leakCheck, join(artifacts, 'leak.tap'), 1);
}
const a = counts(join(artifacts, 'main.tap'));
const b = counts(join(artifacts, 'leak.tap'));
const passed = a.pass + b.pass;
const failed = a.fail + b.fail + a.cancelled + b.cancelled;
const skipped = a.skipped + b.skipped + a.todo + b.todo;
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\n# ${files.length} test files, ${secs} s; artifacts in ${artifacts}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
const ok = main.code === 0 && leak.code === 0 && failed === 0 && passed > 0;
if (ok && !process.env.INBAND_KEEP_TEST_ARTIFACTS) rmSync(artifacts, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
