/**
 * The two ways of making one credential change that the benchmark compares,
 * shared by the host run (ipmi_sim over VM codec / lanplus) and the qemu guest
 * run (/dev/ipmi0 for both):
 *
 * - ours: `inband-agent set-credentials` as a process, password on stdin, or the
 *   `bmc.set_credentials` step POSTed to a running daemon;
 * - ipmitool: five processes, `user set name`, `user set password`, `user
 *   enable`, `channel setaccess`, `user test`. The new password is typed at
 *   ipmitool's own prompt: started in a new session (no controlling terminal),
 *   glibc's getpass() reads it from stdin — so it is in no process's arguments.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { http } from './daemon.js';

export const IPMITOOL = '/usr/bin/ipmitool';

/** Runs one process; resolves with its stdout, rejects on a non-zero exit (the message never carries stdin). */
export function run(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string; newSession?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: opts.newSession ?? false });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file.split('/').pop()} ${args.filter((a) => !a.startsWith('-')).slice(-4).join(' ')} exited ${code}: ${err.trim().slice(0, 300)}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}

export interface IpmitoolTarget {
  /** Interface arguments, e.g. `-I open` or `-I lanplus -C 3 -H … -U admin -E`. */
  args: readonly string[];
  env: NodeJS.ProcessEnv;
}

/** The five-process sequence; returns its wall time in ms. */
export async function ipmitoolSequence(t: IpmitoolTarget, slot: number, channel: number, name: string, password: string): Promise<number> {
  const b = t.args;
  const id = String(slot);
  const s = performance.now();
  await run(IPMITOOL, [...b, 'user', 'set', 'name', id, name], { env: t.env });
  await run(IPMITOOL, [...b, 'user', 'set', 'password', id], { env: t.env, stdin: `${password}\n${password}\n`, newSession: true });
  await run(IPMITOOL, [...b, 'user', 'enable', id], { env: t.env });
  await run(IPMITOOL, [...b, 'channel', 'setaccess', String(channel), id, 'callin=on', 'ipmi=on', 'link=on', 'privilege=4'], { env: t.env });
  const test = await run(IPMITOOL, [...b, 'user', 'test', id, '16'], { env: t.env, stdin: `${password}\n`, newSession: true });
  const ms = performance.now() - s;
  if (!/Success/i.test(test)) throw new Error(`ipmitool user test did not succeed: ${test.trim().slice(0, 200)}`);
  return ms;
}

export interface OursResult { ms: number; userId: number; channels: number[]; requests: number }

/** `inband-agent set-credentials` as a process; `backend` are its backend flags. */
export async function oursCli(root: string, backend: readonly string[], stateDir: string, name: string, password: string): Promise<OursResult> {
  const s = performance.now();
  const out = await run(process.execPath, [join(root, 'bin', 'inband-agent.js'), 'set-credentials', '--username', name, '--password-stdin', '--json', ...backend, '--state-dir', stateDir], { stdin: `${password}\n` });
  const ms = performance.now() - s;
  const r = JSON.parse(out) as { user_id?: number; userId?: number; channels: number[]; requests: number; verified?: { name?: boolean } };
  if (!r.verified?.name) throw new Error(`set-credentials did not verify: ${out.slice(0, 300)}`);
  return { ms, userId: r.user_id ?? r.userId ?? 0, channels: r.channels, requests: r.requests };
}

/** The `bmc.set_credentials` step in a running daemon, POST …?wait=true. */
export async function oursDaemon(port: number, name: string, password: string): Promise<OursResult> {
  const s = performance.now();
  const r = await http(port, 'POST', '/v1/commands/?wait=true', { name: 'bmc.set_credentials', params: { username: name, password } });
  const ms = performance.now() - s;
  const rec = JSON.parse(r.body) as { command_status: string; command_result?: { user_id?: number; userId?: number; channels?: number[]; requests?: number }; command_error?: unknown };
  if (rec.command_status !== 'SUCCEEDED') throw new Error(`bmc.set_credentials ended ${rec.command_status}: ${JSON.stringify(rec.command_error).slice(0, 300)}`);
  const res = rec.command_result ?? {};
  return { ms, userId: res.user_id ?? res.userId ?? 0, channels: res.channels ?? [], requests: res.requests ?? 0 };
}

/** A/B rounds, alternating, after one uncounted warm-up round each. */
export async function alternate(rounds: number, a: (i: number) => Promise<number>, b: (i: number) => Promise<number>): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = -1; i < rounds; i++) {
    const x = await a(i + 1);
    const y = await b(i + 1);
    if (i >= 0) {
      out.a.push(x);
      out.b.push(y);
    }
  }
  return out;
}

/** A bare `node -e 0`: the floor under any Node CLI on this machine (exec, V8, Node's own bootstrap). */
export async function nodeFloor(): Promise<number> {
  const s = performance.now();
  await run(process.execPath, ['-e', '0']);
  return performance.now() - s;
}

/** `inband-agent --version`: node plus the CLI's entry and config modules, no backend, no service. */
export async function cliVersion(root: string): Promise<number> {
  const s = performance.now();
  await run(process.execPath, [join(root, 'bin', 'inband-agent.js'), '--version']);
  return performance.now() - s;
}
