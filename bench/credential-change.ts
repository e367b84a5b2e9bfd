/**
 * A complete credential change, ours beside the ipmitool sequence an operator
 * (or the removed inspector feature) would run, against the same real
 * ipmi_sim on the host, alternating A/B for N rounds:
 *
 * - A: `inband-agent set-credentials` as a process (exec, discover, write,
 *   verify in-band) through the VM-codec backend (ipmi_sim's system interface);
 * - B: `ipmitool -I lanplus -C 3` five processes — `user set name`, `user set
 *   password`, `user enable`, `channel setaccess`, `user test` — session
 *   password through `-E` (environment), the new password typed at ipmitool's
 *   own prompt through a pty: never in any process's arguments;
 * - C: the step alone inside a running daemon (`bmc.set_credentials`,
 *   POST /v1/commands/?wait=true) — how the conductor uses it — alternating
 *   with B again (ipmi_sim takes one VM-codec client at a time, so A and C
 *   cannot share a phase).
 *
 * Each of ours creates a new user in a free slot (a fresh change: full scan,
 * every write, verify); B rewrites one slot it was given, as ipmitool cannot
 * choose one by itself.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pty from 'node-pty';
import { startIpmiSim, ipmiSimAvailability, IPMITOOL_PATH, type IpmiSim } from '../test/harness/ipmi-sim.js';
import { freePort, http, projectRoot, waitAnswering, stop } from './daemon.js';
import { summarize, type Row, type Summary } from './lib.js';

const ADMIN = { name: 'admin', password: 'Bench-admin-01' };

/** Runs one process; resolves with its stdout, rejects on a non-zero exit. */
function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file.split('/').pop()} ${args.filter((a) => !a.startsWith('-')).slice(-4).join(' ')} exited ${code}: ${err.trim().slice(0, 300)}`))));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** ipmitool in a pty, answering every "Password" prompt with `secret` (it asks twice for `user set password`). */
function runWithPrompt(args: string[], env: NodeJS.ProcessEnv, secret: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = pty.spawn(IPMITOOL_PATH, args, { env: env as Record<string, string>, cols: 200, rows: 24 });
    let out = '';
    let answered = 0;
    p.onData((d) => {
      out += d;
      const prompts = (out.match(/password[^:\n]*:\s*$/gim) ?? []).length + (out.match(/password[^:\n]*:\s*\r?\n/gim) ?? []).length;
      if (/password[^:\n]*:\s*$/i.test(out) && answered < 2 && prompts > answered) {
        answered++;
        p.write(`${secret}\r`);
      }
    });
    p.onExit(({ exitCode }) => (exitCode === 0 ? resolve(out) : reject(new Error(`ipmitool ${args.slice(-4).join(' ')} exited ${exitCode}: ${out.replaceAll(secret, '***').trim().slice(0, 300)}`))));
  });
}

async function ipmitoolSequence(sim: IpmiSim, slot: number, channel: number, name: string, password: string): Promise<number> {
  const base = ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.lanPort), '-U', ADMIN.name, '-E'];
  const env = { ...process.env, IPMI_PASSWORD: ADMIN.password };
  const s = performance.now();
  await run(IPMITOOL_PATH, [...base, 'user', 'set', 'name', String(slot), name], { env });
  await runWithPrompt([...base, 'user', 'set', 'password', String(slot)], env, password);
  await run(IPMITOOL_PATH, [...base, 'user', 'enable', String(slot)], { env });
  await run(IPMITOOL_PATH, [...base, 'channel', 'setaccess', String(channel), String(slot), 'callin=on', 'ipmi=on', 'link=on', 'privilege=4'], { env });
  const test = await runWithPrompt([...base, 'user', 'test', String(slot), '16'], env, password);
  const ms = performance.now() - s;
  if (!/Success/i.test(test)) throw new Error(`ipmitool user test did not succeed: ${test.replaceAll(password, '***').trim().slice(0, 200)}`);
  return ms;
}

interface OursResult { ms: number; userId: number; channels: number[]; requests: number }

async function oursCli(sim: IpmiSim, stateDir: string, name: string, password: string): Promise<OursResult> {
  const s = performance.now();
  const out = await run(process.execPath, [join(projectRoot(), 'bin', 'inband-agent.js'), 'set-credentials', '--username', name, '--password-stdin', '--json',
    '--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`, '--state-dir', stateDir], { stdin: `${password}\n` });
  const ms = performance.now() - s;
  const r = JSON.parse(out) as { userId: number; channels: number[]; requests: number; verified: { name: boolean } };
  if (!r.verified?.name) throw new Error(`set-credentials did not verify: ${out.slice(0, 300)}`);
  return { ms, userId: r.userId, channels: r.channels, requests: r.requests };
}

async function oursDaemon(port: number, name: string, password: string): Promise<OursResult> {
  const s = performance.now();
  const r = await http(port, 'POST', '/v1/commands/?wait=true', { name: 'bmc.set_credentials', params: { username: name, password } });
  const ms = performance.now() - s;
  const rec = JSON.parse(r.body) as { command_status: string; command_result?: { userId?: number; user_id?: number; channels?: number[]; requests?: number }; command_error?: unknown };
  if (rec.command_status !== 'SUCCEEDED') throw new Error(`bmc.set_credentials ended ${rec.command_status}: ${JSON.stringify(rec.command_error).slice(0, 300)}`);
  const res = rec.command_result ?? {};
  return { ms, userId: res.userId ?? res.user_id ?? 0, channels: res.channels ?? [], requests: res.requests ?? 0 };
}

export interface ChangeFigures { a: Summary; b1: Summary; c: Summary; b2: Summary; samples: Record<string, number[]>; rounds: number; requests: number[] }

export async function benchCredentialChange(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: unknown }> {
  if (!ipmiSimAvailability().available) {
    console.log('credential-change bench: ipmi_sim not available; skipped');
    return { rows: [], raw: { skipped: 'ipmi_sim not available' } };
  }
  const rounds = opts.quick ? 3 : 10;
  const slotB = 40;
  const stateDir = mkdtempSync(join(tmpdir(), 'inband-bench-change-'));
  const sim = await startIpmiSim({ users: [{ id: 2, name: ADMIN.name, password: ADMIN.password, privilege: 'admin' }] });
  const samples: Record<string, number[]> = { a: [], b1: [], c: [], b2: [] };
  const requests: number[] = [];
  try {
    let channel = 1;
    // Phase 1: the CLI process against the ipmitool sequence, alternating (one warm-up each, not counted).
    for (let i = -1; i < rounds; i++) {
      const pw = `Bench-pw-${String(i + 1).padStart(4, '0')}`;
      const a = await oursCli(sim, stateDir, `cli${i + 1}`, pw);
      channel = a.channels[0] ?? channel;
      const b = await ipmitoolSequence(sim, slotB, channel, `tool${i + 1}`, pw);
      if (i >= 0) {
        samples.a!.push(a.ms);
        samples.b1!.push(b);
        requests.push(a.requests);
      }
    }
    // Phase 2: the step inside a running daemon (its own VM-codec connection) against the ipmitool sequence.
    const port = await freePort();
    const t0 = performance.now();
    const daemon = spawn(process.execPath, [join(projectRoot(), 'bin', 'inband-agent.js'), 'serve', '--standalone', '--backend', 'vm-codec',
      '--vm-codec', `${sim.host}:${sim.vmPort}`, '--listen-host', '127.0.0.1', '--listen-port', String(port), '--state-dir', stateDir], { stdio: 'ignore' });
    try {
      await waitAnswering(port, daemon, t0);
      for (let i = -1; i < rounds; i++) {
        const pw = `Bench-pw-d${String(i + 1).padStart(3, '0')}`;
        const c = await oursDaemon(port, `api${i + 1}`, pw);
        const b = await ipmitoolSequence(sim, slotB, channel, `tool${i + 1}`, pw);
        if (i >= 0) {
          samples.c!.push(c.ms);
          samples.b2!.push(b);
        }
      }
    } finally {
      await stop(daemon);
    }
  } finally {
    await sim.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const f: ChangeFigures = { a: summarize(samples.a!), b1: summarize(samples.b1!), c: summarize(samples.c!), b2: summarize(samples.b2!), samples, rounds, requests };
  const peer = 'ipmitool -I lanplus -C 3, 5 processes (name, password, enable, setaccess, test)';
  const mm = (s: Summary) => `min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)}`;
  const rows: Row[] = [
    { section: 'credential change (host, ipmi_sim)', what: `complete change, median of ${rounds} A/B rounds`, ours: 'inband-agent set-credentials process (vm-codec; scan, write, verify)', oursValue: f.a.median,
      peer, peerValue: f.b1.median, unit: 'ms', better: 'lower', note: `ours ${mm(f.a)}; ipmitool ${mm(f.b1)}; ours ${Math.round(summarize(requests).median)} IPMI requests` },
    { section: 'credential change (host, ipmi_sim)', what: `the step in a running daemon, median of ${rounds} A/B rounds`, ours: 'bmc.set_credentials over HTTP, wait=true (vm-codec)', oursValue: f.c.median,
      peer, peerValue: f.b2.median, unit: 'ms', better: 'lower', note: `ours ${mm(f.c)}; ipmitool ${mm(f.b2)}` },
  ];
  return { rows, raw: f };
}
