/**
 * Every command of both programs, as an operator meets it: its help fits a
 * screen (24 lines of at most 100 columns), the program's help lists every
 * command (the conductor side's included), a bad value or flag is a usage error
 * (exit 2) naming it before any backend opens, and the config flags still win
 * over the environment and the kernel command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../agent/cli.js';
import { AGENT_COMMANDS, CONDUCTOR_COMMANDS_LISTED } from '../../agent/cli/commands.js';
import { flagName, OPTIONS, type OptionName } from '../../agent/config.js';
import { LineCollector } from '../../agent/log-streams.js';
import { main as conductorMain } from '../../conductor/cli.js';
import { CONDUCTOR_COMMANDS } from '../../conductor/commands.js';
import { captureLines } from '../helpers/secrets.js';

async function agent(argv: string[], opts: { env?: Record<string, string>; cmdlinePath?: string } = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new LineCollector();
  const stderr = new LineCollector();
  const code = await main(argv, { stdout, stderr, stdin: Readable.from(['']), env: opts.env ?? {}, cmdlinePath: opts.cmdlinePath ?? null, signals: false, ipmiDevices: [] });
  captureLines('agent-cli-help', [...stdout.lines, ...stderr.lines]);
  return { code, out: stdout.text(), err: stderr.text() };
}

async function conductor(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await conductorMain(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {} });
  return { code, out, err };
}

function fitsAScreen(what: string, text: string): void {
  const lines = text.trimEnd().split('\n');
  assert.ok(lines.length <= 24, `${what}: ${lines.length} lines`);
  for (const l of lines) assert.ok(l.length <= 100, `${what}: ${l.length} columns: ${l}`);
}

/** A command's words as typed: `user enable|disable` is typed `user enable`. */
const words = (name: readonly string[]): string[] => name.map((w) => w.split('|')[0]!);

test('every command\'s help fits a screen, and the program\'s help lists every command of both programs', async () => {
  const top = await agent(['--help']);
  assert.equal(top.code, 0);
  fitsAScreen('--help', top.out);
  for (const c of AGENT_COMMANDS) {
    const r = await agent([...words(c.name), '--help']);
    assert.equal(r.code, 0, c.name.join(' '));
    fitsAScreen(c.name.join(' '), r.out);
    assert.ok(r.out.startsWith(`usage: inband-agent ${c.usage[0]}`), c.name.join(' '));
    assert.ok(top.out.includes(`inband-agent ${c.name.join(' ')}`), `the program's help lists ${c.name.join(' ')}`);
    // Every option the command takes is in its help (-h/--help excepted).
    for (const o of Object.keys(c.options)) assert.ok(r.out.includes(`--${o}`) || r.out.includes(`--[no-]${o}`), `${c.name.join(' ')} --help names --${o}`);
  }
  for (const group of [['user'], ['channel'], ['mc'], ['bmc']]) {
    const r = await agent([...group, '--help']);
    assert.equal(r.code, 0, group[0]);
    fitsAScreen(`${group[0]} --help`, r.out);
  }
  const conductorTop = await conductor(['--help']);
  fitsAScreen('conductor --help', conductorTop.out);
  assert.deepEqual(CONDUCTOR_COMMANDS_LISTED.map((c) => [c.usage[0], c.summary]), CONDUCTOR_COMMANDS.map((c) => [c.usage[0], c.summary]),
    'the agent\'s help lists the conductor side\'s commands as the conductor declares them');
  for (const c of CONDUCTOR_COMMANDS) {
    const r = await conductor([c.name[0]!, '--help']);
    assert.equal(r.code, 0, c.name[0]);
    fitsAScreen(`conductor ${c.name[0]}`, r.out);
    assert.ok(top.out.includes(`inband-agent conductor ${c.name[0]}`), `the program's help lists conductor ${c.name[0]}`);
    for (const o of Object.keys(c.options)) assert.ok(r.out.includes(`--${o}`), `conductor ${c.name[0]} --help names --${o}`);
  }
});

test('serve --help-all tells every option with its default and every source', async () => {
  const r = await agent(['serve', '--help-all']);
  assert.equal(r.code, 0);
  for (const n of Object.keys(OPTIONS) as OptionName[]) assert.ok(r.out.includes(flagName(n)), flagName(n));
  assert.match(r.out, /kernel ipa-api-url=/);
});

test('a bad value or an unknown flag is a usage error naming it, on every BMC command, before any backend opens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-help-'));
  try {
    const sim = ['--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
    const bmc: string[][] = [['bmc', 'raw', '06', '01'], ['bmc', 'info'], ['set-credentials', '--username', 'x', '--generate'], ['user', 'list'], ['user', 'enable', '3'],
      ['user', 'priv', '3', 'user'], ['channel', 'info'], ['mc', 'info']];
    for (const argv of bmc) {
      const bad = await agent([...argv, '--backend', 'foo']);
      assert.equal(bad.code, 2, argv.join(' '));
      assert.match(bad.err, /--backend must be one of auto, native, simulated, vm-codec, ipmitool \(got "foo"\)/, argv.join(' '));
      const typo = await agent([...argv, '--sim-state', 'x', ...sim]);
      assert.equal(typo.code, 2, argv.join(' '));
      assert.match(typo.err, /unknown option --sim-state \(did you mean --sim-state-file\?\)/, argv.join(' '));
      // A serve-only option is not a BMC command's.
      const serveOnly = await agent([...argv, '--listen-port', '1', ...sim]);
      assert.equal(serveOnly.code, 2, argv.join(' '));
      assert.match(serveOnly.err, /unknown option --listen-port/);
    }
    const serve = await agent(['serve', '--tls-min-version', '1.1']);
    assert.equal(serve.code, 2);
    assert.match(serve.err, /--tls-min-version must be one of 1\.2, 1\.3 \(got "1\.1"\)/);
    const noValue = await agent(['user', 'list', '--channel']);
    assert.equal(noValue.code, 2);
    assert.match(noValue.err, /--channel needs a value \(N\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the flags a command parsed win over the environment, the kernel command line and the config file, as before', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-layers-'));
  try {
    const cmdline = join(dir, 'cmdline');
    writeFileSync(cmdline, 'ro quiet inband-backend=native inband-device=/nonexistent/ipmi0\n');
    const state = ['--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
    // The kernel command line asks for a device that does not exist: the command fails, naming it.
    const fromKernel = await agent(['bmc', 'raw', '06', '01', ...state], { cmdlinePath: cmdline });
    assert.equal(fromKernel.code, 1, fromKernel.err);
    assert.match(fromKernel.err, /\/nonexistent\/ipmi0/);
    // The environment wins over it, and a flag over both.
    const fromEnv = await agent(['bmc', 'raw', '06', '01', ...state], { cmdlinePath: cmdline, env: { INBAND_AGENT_BACKEND: 'simulated' } });
    assert.equal(fromEnv.code, 0, fromEnv.err);
    assert.match(fromEnv.out, /^ 20 01 /);
    const fromFlag = await agent(['bmc', 'raw', '06', '01', '--backend=simulated', ...state], { cmdlinePath: cmdline, env: { INBAND_AGENT_BACKEND: 'native' } });
    assert.equal(fromFlag.code, 0, fromFlag.err);
    assert.match(fromFlag.err, /SIMULATED/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
