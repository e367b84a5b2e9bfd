/**
 * The CLI, called in-process through main() with captured streams (the
 * compiled bin needs dist/). The BMC is the simulated backend with a state
 * file, so consecutive commands meet the same BMC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { LineCollector } from '../../agent/log-streams.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

/** `capture: false` for output that holds a secret on purpose (--show-secret): the suite's leak check reads captures. */
async function run(argv: string[], stdin = '', capture = true): Promise<{ code: number; out: string; err: string }> {
  const stdout = new LineCollector();
  const stderr = new LineCollector();
  const code = await main(argv, { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cmdlinePath: null, signals: false });
  if (capture) captureLines('agent-cli', [...stdout.lines, ...stderr.lines]);
  return { code, out: stdout.text(), err: stderr.text() };
}

function simArgs(dir: string): string[] {
  return ['--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
}

test('--version, --help and per-command help', async () => {
  assert.deepEqual(await run(['--version']), { code: 0, out: 'inband-agent 0.1.0', err: '' });
  const top = await run(['--help']);
  assert.equal(top.code, 0);
  for (const s of ['serve', 'bmc raw', 'bmc info', 'set-credentials']) assert.ok(top.out.includes(s), s);
  const serveHelp = await run(['serve', '--help']);
  assert.equal(serveHelp.code, 0);
  assert.match(serveHelp.out, /--api-url/);
  assert.match(serveHelp.out, /--require-token-for-reads/);
  assert.match(serveHelp.out, /Ironic 21\.x polls it without a token/);
  for (const sub of [['bmc', 'raw', '--help'], ['bmc', 'info', '--help'], ['set-credentials', '--help']]) {
    const r = await run(sub);
    assert.equal(r.code, 0, sub.join(' '));
    assert.match(r.out, /--backend/, sub.join(' '));
  }
  const none = await run([]);
  assert.equal(none.code, 2);
  const bad = await run(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown command "frobnicate"/);
});

test('bmc raw prints the response bytes in hex, and a non-zero completion code by its spec name with exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-cli-'));
  try {
    const ok = await run(['bmc', 'raw', '0x06', '0x01', ...simArgs(dir)]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^ 20 01 /, 'Get Device ID answers device ID 0x20 (IPMI v2.0 §20.1)');
    const cc = await run(['bmc', 'raw', '06', 'ff', ...simArgs(dir)]);
    assert.equal(cc.code, 1);
    assert.match(cc.err, /rsp=0xc1\): Invalid command/);
    const usage = await run(['bmc', 'raw', '0x6', ...simArgs(dir)]);
    assert.equal(usage.code, 2);
    const notHex = await run(['bmc', 'raw', '0x6', 'zz', ...simArgs(dir)]);
    assert.equal(notHex.code, 2);
    assert.match(notHex.err, /CMD: "zz" is not a hex byte/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('set-credentials from stdin, then bmc info shows the user; a generated password is shown only with --show-secret', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-cli-'));
  const password = recordSecret('Cli-pass-2468');
  try {
    const set = await run(['set-credentials', '--username', 'ironic', '--password-stdin', '--channel', '1', ...simArgs(dir)], `${password}\n`);
    assert.equal(set.code, 0, set.err);
    assert.match(set.out, /user \d+ "ironic" \(administrator\) on LAN channel 1/);
    // The simulated BMC never reads as a real one (test/agent/trust-simulated.test.ts).
    assert.match(set.out, /Verified on the SIMULATED BMC only: password test passed, name ok, enabled yes/);
    assert.ok(!set.out.includes(password) && !set.err.includes(password));

    const info = await run(['bmc', 'info', ...simArgs(dir)]);
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /IPMI version:\s+2\.0/);
    assert.match(info.out, /\s\d+\s+ironic\s+yes\s+ch1:administrator/);
    const json = await run(['bmc', 'info', '--json', ...simArgs(dir)]);
    const parsed = JSON.parse(json.out);
    assert.ok(parsed.users.some((u: { name: string }) => u.name === 'ironic'));

    const hidden = await run(['set-credentials', '--username', 'gen', '--generate', '--json', ...simArgs(dir)]);
    assert.equal(hidden.code, 0, hidden.err);
    const h = JSON.parse(hidden.out);
    assert.equal(h.password_generated, true);
    assert.equal(h.generated_password, undefined);

    const shown = await run(['set-credentials', '--username', 'gen', '--generate', '--show-secret', ...simArgs(dir)], '', false);
    assert.equal(shown.code, 0, shown.err);
    const m = /Generated password: (\S+)/.exec(shown.out);
    assert.ok(m, shown.out);
    recordSecret(m![1]!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('set-credentials refuses bad usage with exit 2 and engine failures with the reason and exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-cli-'));
  try {
    const both = await run(['set-credentials', '--username', 'x', '--generate', '--password-stdin', ...simArgs(dir)], 'Abcdef-123\n');
    assert.equal(both.code, 2);
    assert.match(both.err, /exactly one of --password-stdin and --generate/);
    const positional = await run(['set-credentials', '--username', 'x', 'Abcdef-123', ...simArgs(dir)]);
    assert.equal(positional.code, 2);
    assert.match(positional.err, /never from an argument/);
    assert.ok(!positional.err.includes('Abcdef-123'), 'a password given as an argument is not echoed');
    const empty = await run(['set-credentials', '--username', 'x', '--password-stdin', ...simArgs(dir)], '\n');
    assert.equal(empty.code, 2);
    // The credential contract refuses it before the backend opens: a usage error naming the flag.
    const badName = await run(['set-credentials', '--username', 'bad name!', '--generate', ...simArgs(dir)]);
    assert.equal(badName.code, 2);
    assert.match(badName.err, /--username: must be 1-16 ASCII letters/);
    const badBackend = await run(['bmc', 'info', '--backend', 'nonsense']);
    assert.equal(badBackend.code, 2);
    assert.match(badBackend.err, /--backend must be one of auto, native, simulated, vm-codec, ipmitool \(got "nonsense"\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
