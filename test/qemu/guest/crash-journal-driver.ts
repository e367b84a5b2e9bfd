/**
 * Runs as a systemd service inside the qemu guest booted with systemd as PID 1
 * (test/qemu/crash-journal-systemd.test.ts): drives the shipped
 * inband-agent.service through a crash in the middle of a credential change.
 *
 *   1. `systemctl start inband-agent`; waits for its API on 127.0.0.1:9999;
 *   2. leaves a marker file in its RuntimeDirectory and one in its StateDirectory;
 *   3. asks it (loopback, IPA's API) for bmc.set_credentials;
 *   4. asks the host to say when the change is half-way (the host's VM-codec
 *      proxy holds Set User Password: the name is written, nothing after it);
 *   5. `systemctl kill -s SIGKILL inband-agent`, waits for the process to go,
 *      and lets the host release the BMC link;
 *   6. waits for systemd's restart (NRestarts, a new MainPID) and for the
 *      restarted agent to consume the journal; lets the host read the BMC;
 *   7. one more change through the restarted agent, to show it is not stuck.
 *
 * Every step reports an `@@inband:result` line; the agent's journal (journalctl)
 * is printed as `agent-log:` lines. The password comes from the host over the
 * console (echo off) and appears in no line. Always ends with `@@inband:exit`
 * and an immediate power-off.
 */
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { HostChannel, report } from './protocol.js';

const UNIT = 'inband-agent.service';
const API = 'http://127.0.0.1:9999';
const STATE_DIR = '/var/lib/inband-agent';
const RUNTIME_DIR = '/run/inband-agent';
const JOURNAL = `${STATE_DIR}/credential-change.journal.json`;
const MARKER = 'restart-marker';
/** Node loading the agent under TCG takes ~15 s; leave room for a loaded machine. */
const UP_TIMEOUT_MS = 120_000;

const uptime = async (): Promise<number> => Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

interface UnitState {
  MainPID: number;
  NRestarts: number;
  ActiveState: string;
  SubState: string;
  Result: string;
  InvocationID: string;
  ExecMainStatus: string;
  ExecMainCode: string;
}

async function unitState(): Promise<UnitState> {
  const out = await run('/usr/bin/systemctl', ['show', UNIT, '-p', 'MainPID,NRestarts,ActiveState,SubState,Result,InvocationID,ExecMainStatus,ExecMainCode']);
  const kv = Object.fromEntries(out.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    MainPID: Number(kv.MainPID), NRestarts: Number(kv.NRestarts), ActiveState: kv.ActiveState ?? '', SubState: kv.SubState ?? '',
    Result: kv.Result ?? '', InvocationID: kv.InvocationID ?? '', ExecMainStatus: kv.ExecMainStatus ?? '', ExecMainCode: kv.ExecMainCode ?? '',
  };
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const t0 = performance.now();
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const rsp = await fetch(`${API}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await rsp.text();
  try {
    return { status: rsp.status, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: rsp.status, json: { unparsed: text.slice(0, 200) } };
  }
}

const waitApi = (): Promise<number> => until('GET /v1/status', UP_TIMEOUT_MS, async () => ((await api('GET', '/v1/status')).status === 200 ? 1 : undefined));

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

async function agentLog(): Promise<string[]> {
  const out = await run('/usr/bin/journalctl', ['-u', UNIT, '-o', 'cat', '--no-pager']);
  return out.stdout.split('\n').filter((l) => l.trim() !== '');
}

async function main(host: HostChannel): Promise<void> {
  // systemd's own clock: when it started this unit's ExecStart (CLOCK_MONOTONIC µs, the uptime's clock).
  const self = await run('/usr/bin/systemctl', ['show', 'inband-crash-driver.service', '-p', 'ExecMainStartTimestampMonotonic', '--value']);
  const virt = await run('/usr/bin/systemd-detect-virt', []);
  report({ step: 'driver-start', uptime: await uptime(), execStartUptime: Number(self.stdout.trim()) / 1e6, virtualization: virt.stdout.trim() });
  const params = { username: 'crashuser', password: await host.ask('secret:password') };

  // 1. The agent, started by systemd from the shipped unit.
  const started = await run('/usr/bin/systemctl', ['start', UNIT]);
  if (started.code !== 0) throw new Error(`systemctl start ${UNIT} exited ${started.code}: ${started.stderr.trim()}`);
  await waitApi();
  const first = await unitState();
  report({ step: 'agent-up', uptime: await uptime(), unit: first });

  // 2. One marker per directory: which of them a restart keeps.
  const dirs = { state: (await stat(STATE_DIR)).ino, runtime: (await stat(RUNTIME_DIR)).ino };
  await writeFile(`${STATE_DIR}/${MARKER}`, 'x', { mode: 0o600 });
  await writeFile(`${RUNTIME_DIR}/${MARKER}`, 'x', { mode: 0o600 });

  // 3. The change, asynchronously: the agent dies under it.
  const posted = await api('POST', '/v1/commands/?wait=false', { name: 'bmc.set_credentials', params });
  report({ step: 'posted', status: posted.status, command_status: posted.json.command_status });

  // 4. Half-way: the host says when the BMC has the name but no password.
  const held = await host.ask('wait-held');
  const journalBefore = await readFile(JOURNAL, 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, (e: Error) => ({ error: e.message }));
  report({ step: 'held', held, uptime: await uptime(), journal: journalBefore, unit: await unitState() });
  if (held !== 'held') throw new Error(`the change never reached Set User Password (${held})`);

  // 5. The crash: what `Restart=on-failure` exists for.
  const kill = await run('/usr/bin/systemctl', ['kill', '-s', 'SIGKILL', UNIT]);
  const gone = await until('the killed agent to be gone', 30_000, async () => {
    const s = await unitState();
    return s.MainPID !== first.MainPID ? s : undefined;
  });
  report({ step: 'killed', exit: kill.code, uptime: await uptime(), unit: gone, journalSurvives: await exists(JOURNAL) });
  await host.ask('release');

  // 6. systemd restarts it; the new process finds the journal and rolls back.
  const restarted = await until('systemd to restart the agent', 60_000, async () => {
    const s = await unitState();
    return s.NRestarts >= 1 && s.ActiveState === 'active' && s.MainPID > 0 && s.MainPID !== first.MainPID ? s : undefined;
  });
  report({ step: 'restarted', uptime: await uptime(), unit: restarted });
  await waitApi();
  const recovered = await until('the restarted agent to roll the journal back', UP_TIMEOUT_MS, async () => {
    const lines = await agentLog();
    return lines.some((l) => /an interrupted credential change .* was found|recovering an interrupted credential change failed/.test(l)) ? lines : undefined;
  });
  const markers = { state: await exists(`${STATE_DIR}/${MARKER}`), runtime: await exists(`${RUNTIME_DIR}/${MARKER}`) };
  const dirsAfter = { state: (await stat(STATE_DIR)).ino, runtime: (await stat(RUNTIME_DIR)).ino };
  report({
    step: 'recovered', uptime: await uptime(), journalLeft: await exists(JOURNAL), markers, dirsBefore: dirs, dirsAfter,
    recoveryLine: recovered.find((l) => /an interrupted credential change .* was found/.test(l)),
  });
  await host.ask('verify-rollback');

  // 7. The restarted agent takes a new change.
  const again = await api('POST', '/v1/commands/?wait=true', { name: 'bmc.set_credentials', params });
  report({ step: 'again', status: again.status, command_status: again.json.command_status, command_error: again.json.command_error, unit: await unitState() });
  await host.ask('verify-again');

  for (const line of await agentLog()) process.stdout.write(`agent-log: ${line}\n`);
}

const host = new HostChannel();
let rc = 1;
try {
  await main(host);
  rc = 0;
} catch (err) {
  report({ step: 'error', message: err instanceof Error ? err.message : String(err) });
  for (const line of await agentLog().catch(() => [])) process.stdout.write(`agent-log: ${line}\n`);
} finally {
  host.close();
  process.stdout.write(`@@inband:exit ${rc} ${await uptime()}\n`);
  await run('/bin/sync', []);
  // -ff: reboot(2) at once; the test's result is already on the console.
  await run('/usr/bin/systemctl', ['poweroff', '-ff']);
}
