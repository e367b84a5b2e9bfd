/**
 * Passwords are typed the way operators expect: on a terminal --password-stdin
 * prompts with echo off and asks again to confirm; a mismatch is refused before
 * the BMC is touched; a pipe still works; a password is never taken from argv.
 * Run through a real pseudo-terminal (node-pty), typing as a user would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn as spawnPty } from 'node-pty';
import { projectRoot } from '../native/project.js';
import { recordSecret } from '../helpers/secrets.js';

const CLI = join(projectRoot(), 'bin', 'inband-agent.js');
const PASSWORD = 'Typ3d-At_Prompt';
const OTHER = 'Typ3d-Wr0ng_two';

function simArgs(dir: string): string[] {
  return ['--backend', 'simulated', '--sim-state-file', join(dir, 'bmc.json'), '--state-dir', join(dir, 'state')];
}

/** Runs the CLI on a pty; answers each prompt (matched in order) with the next of `answers`, as keystrokes ending in Enter. */
function onTerminal(args: string[], answers: string[]): Promise<{ code: number; screen: string; prompts: number }> {
  return new Promise((resolve) => {
    const pty = spawnPty(process.execPath, [CLI, ...args], { name: 'xterm', cols: 200, rows: 40, cwd: projectRoot(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let screen = '';
    let prompts = 0;
    pty.onData((d) => {
      screen += d;
      const seen = (screen.match(/password: /gi) ?? []).length;
      while (prompts < seen && prompts < answers.length) {
        // Typed one key at a time, the way a person does; a backspace corrects a slip.
        const keys = [...answers[prompts]!.slice(0, 3), 'x', '\x7f', ...answers[prompts]!.slice(3), '\r'];
        prompts++;
        for (const k of keys) pty.write(k);
      }
    });
    pty.onExit(({ exitCode }) => setTimeout(() => resolve({ code: exitCode, screen, prompts }), 50));
  });
}

function bmcUsers(dir: string): string {
  const f = join(dir, 'bmc.json');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

test('on a terminal --password-stdin prompts without echo, confirms, and sets the password', { timeout: 60_000 }, async () => {
  recordSecret(PASSWORD);
  const dir = mkdtempSync(join(tmpdir(), 'pw-tty-'));
  try {
    const r = await onTerminal(['set-credentials', '--username', 'tty_user', '--password-stdin', ...simArgs(dir)], [PASSWORD, PASSWORD]);
    assert.equal(r.code, 0, r.screen);
    assert.equal(r.prompts, 2, r.screen);
    assert.match(r.screen, /BMC password: /);
    assert.match(r.screen, /Retype BMC password: /);
    assert.match(r.screen, /user \d+ "tty_user"/);
    assert.match(r.screen, /password test passed/);
    // Nothing typed came back: not the password, not a piece of it, not the slip.
    assert.ok(!r.screen.includes(PASSWORD.slice(0, 3)), r.screen);
    assert.ok(!r.screen.includes(PASSWORD.slice(3)), r.screen);
    // The password the BMC holds is the one typed (backspace applied): log in with it over a pipe.
    const again = spawnSync(process.execPath, [CLI, 'set-credentials', '--username', 'tty_user', '--password-stdin', ...simArgs(dir)], { input: `${PASSWORD}\n`, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Already in place:/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on a terminal a confirmation that differs is refused (exit 2) and the BMC is not touched', { timeout: 60_000 }, async () => {
  recordSecret(PASSWORD);
  recordSecret(OTHER);
  const dir = mkdtempSync(join(tmpdir(), 'pw-tty-'));
  try {
    const r = await onTerminal(['set-credentials', '--username', 'tty_user', '--password-stdin', ...simArgs(dir)], [PASSWORD, OTHER]);
    assert.equal(r.code, 2, r.screen);
    assert.match(r.screen, /--password-stdin: the two passwords typed do not match; nothing was changed/);
    assert.ok(!r.screen.includes(PASSWORD.slice(3)) && !r.screen.includes(OTHER.slice(3)), r.screen);
    assert.equal(bmcUsers(dir), '', 'the BMC was opened');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a password on the command line is a usage error that points to the prompt or stdin', async () => {
  // Deliberately in argv (so not registered with the suite's leak check, which scans
  // process arguments): what is asserted is that the CLI never repeats it.
  const inArgv = 'Argv-W0uld_leak';
  const dir = mkdtempSync(join(tmpdir(), 'pw-argv-'));
  try {
    for (const argv of [['--password', inArgv], [`--password=${inArgv}`], [`--password-stdin=${inArgv}`], ['--password-stdin', '--password', inArgv]]) {
      const r = spawnSync(process.execPath, [CLI, 'set-credentials', '--username', 'argv_user', ...argv, ...simArgs(dir)], { input: 'Piped-pw_1\n', encoding: 'utf8' });
      assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /never given as an argument/);
      assert.match(r.stderr, /prompt/);
      assert.ok(!r.stderr.includes(inArgv) && !r.stdout.includes(inArgv));
      assert.equal(bmcUsers(dir), '', 'the BMC was opened');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stdin that is not a terminal still gives the password (first line, no prompt)', async () => {
  recordSecret(PASSWORD);
  const dir = mkdtempSync(join(tmpdir(), 'pw-pipe-'));
  try {
    const r = spawnSync(process.execPath, [CLI, 'set-credentials', '--username', 'pipe_user', '--password-stdin', ...simArgs(dir)], { input: `${PASSWORD}\n`, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /password: /i);
    assert.match(r.stdout, /"pipe_user"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
