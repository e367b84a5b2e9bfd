/**
 * Daemon footprint: the agent's daemon beside ironic-python-agent (IPA), each
 * measured by the same client in the same way:
 *
 * - exec → API answering: spawn, then GET /v1/status every few ms until a 200
 *   (median of N fresh starts);
 * - VmRSS / VmHWM from /proc/PID/status when idle after start, and again after
 *   the load below (which sends well over 10,000 requests);
 * - POST /v1/commands/?wait=true latency (the same command on both sides,
 *   clean.get_clean_steps, as the conductor sends it; plus bmc.get_info on ours);
 * - GET /v1/status and GET /v1/commands/ requests/s at 1 and 16 connections
 *   from a loopback load generator (wrk if installed, else autocannon), with
 *   p99 latency.
 *
 * IPA is not packaged in Debian; it is measured only when
 * INBAND_BENCH_IPA_CMD names a command that starts it standalone on loopback
 * (`{port}` is replaced by the port). Otherwise the figures recorded on this
 * kind of machine are printed as the peer, labelled as not measured in this run.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { summarize, type Row, type Summary } from './lib.js';

/** IPA 9.4.1 figures recorded on a machine like this one (2 cores), used when IPA cannot be run. */
export const IPA_RECORDED = Object.freeze({
  startMs: 670,
  rssIdleMiB: 78,
  statusRps1: 3100,
  /** p99 at 16 connections was 16–26 ms; the upper end is used. */
  statusP99At16Ms: 26,
});
const RECORDED = 'IPA 9.4.1 (recorded, not measured in this run)';

export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'bin', 'inband-agent.js')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface HttpResult { status: number; body: string }

export function http(port: number, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, timeout: timeoutMs,
      headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** A daemon the bench can start on a given loopback port. */
export interface DaemonSpec {
  label: string;
  start(port: number): ChildProcess;
  /** Commands POSTed with wait=true, by name → params, before the load (they fill the command list). */
  commands: Record<string, unknown>;
  /** Commands of this side only, POSTed after the load so both sides' lists hold as many records. */
  extraCommands?: Record<string, unknown>;
  cleanup?: () => void;
}

export function oursSpec(): DaemonSpec {
  const root = projectRoot();
  const stateDir = mkdtempSync(join(tmpdir(), 'inband-bench-daemon-'));
  return {
    label: 'inband-agent serve (simulated BMC)',
    start: (port) => spawn(process.execPath, [join(root, 'bin', 'inband-agent.js'), 'serve', '--standalone', '--backend', 'simulated',
      '--listen-host', '127.0.0.1', '--listen-port', String(port), '--state-dir', stateDir], { stdio: 'ignore', cwd: root }),
    commands: { 'clean.get_clean_steps': CLEAN_STEPS_PARAMS },
    extraCommands: { 'bmc.get_info': {} },
    cleanup: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}

/** `INBAND_BENCH_IPA_CMD`, e.g. `/path/run-ipa.sh {port}`: split on blanks and run without a shell, so the PID is the daemon's own when the script execs it. */
export function ipaSpecFromEnv(env = process.env): DaemonSpec | null {
  const tmpl = env.INBAND_BENCH_IPA_CMD?.trim();
  if (!tmpl) return null;
  return {
    label: 'ironic-python-agent (standalone)',
    start: (port) => {
      const [cmd, ...args] = tmpl.replaceAll('{port}', String(port)).split(/\s+/);
      return spawn(cmd!, args, { stdio: 'ignore' });
    },
    commands: { 'clean.get_clean_steps': CLEAN_STEPS_PARAMS },
  };
}

/**
 * The floor under any Node daemon here: a bare node:http server answering
 * GET /v1/status with IPA's body, no framework, no logger — what exec → answer
 * and idle RSS cannot go below with this Node.
 */
export function floorSpec(): DaemonSpec {
  const dir = mkdtempSync(join(tmpdir(), 'inband-bench-floor-'));
  const file = join(dir, 'floor.mjs');
  writeFileSync(file, `import { createServer } from 'node:http';
const body = JSON.stringify({ started_at: Date.now() / 1000, version: '0.1.0' });
createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(body); }).listen(Number(process.argv[2]), '127.0.0.1');
`);
  return {
    label: 'bare node:http server (floor)',
    start: (port) => spawn(process.execPath, [file, String(port)], { stdio: 'ignore' }),
    commands: {},
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const CLEAN_STEPS_PARAMS = {
  node: { uuid: '1be26c0b-03f2-4d2e-ae87-c02d7f33c123', properties: {}, instance_info: {}, driver_internal_info: {}, extra: {} },
  ports: [],
};

export async function waitAnswering(port: number, child: ChildProcess, t0: number, deadlineMs = 60_000): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before answering`);
    try {
      const r = await http(port, 'GET', '/v1/status', undefined, 2000);
      if (r.status === 200) return performance.now() - t0;
    } catch { /* not listening yet */ }
    if (performance.now() - t0 > deadlineMs) throw new Error(`no answer on port ${port} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 3));
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

function memory(pid: number): { rssMiB: number; hwmMiB: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

export interface LoadResult { tool: string; connections: number; seconds: number; requests: number; rps: number; p50Ms: number; p99Ms: number; non2xx: number }

function wrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

/** One load run: wrk (C, little CPU taken from the server) when present, else autocannon in a child process. */
async function load(port: number, path: string, connections: number, seconds: number): Promise<LoadResult> {
  const url = `http://127.0.0.1:${port}${path}`;
  if (existsSync('/usr/bin/wrk')) {
    const out = await new Promise<string>((resolve, reject) => execFile('/usr/bin/wrk', ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${seconds}s`, '--latency', url],
      { timeout: (seconds + 30) * 1000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const pct = (p: string): number => {
      const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
      return m ? wrkMs(m[1]!, m[2]!) : NaN;
    };
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const errors = /Socket errors: (.*)/.exec(out)?.[1];
    if (errors) console.log(`  wrk ${path} -c${connections}: socket errors ${errors}`);
    return { tool: 'wrk', connections, seconds, requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN), p50Ms: pct('50'), p99Ms: pct('99'), non2xx };
  }
  const { default: autocannon } = await import('autocannon' as string) as { default: (o: unknown) => Promise<{ requests: { total: number; average: number }; latency: { p50: number; p99: number }; non2xx: number }> };
  const r = await autocannon({ url, connections, duration: seconds });
  return { tool: 'autocannon', connections, seconds, requests: r.requests.total, rps: r.requests.total / seconds, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx };
}

export interface DaemonFigures {
  label: string;
  startSamples: number[];
  start: Summary;
  idle: { rssMiB: number; hwmMiB: number };
  /** Still idle, {@link SETTLE_MS} after the first answer: V8's idle collection (its memory reducer, ~8 s in) has run. */
  settled: { rssMiB: number; hwmMiB: number };
  afterLoad: { rssMiB: number; hwmMiB: number; requests: number };
  /** Command records listed by GET /v1/commands/ at the end, of those posted. */
  records?: { kept: number; posted: number };
  post: Record<string, { samples: number[]; lat: Summary }>;
  loads: Record<string, LoadResult>;
}

/** exec → GET /v1/status answering, one fresh start each. */
export async function startTime(spec: DaemonSpec): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spec.start(port);
  try {
    return await waitAnswering(port, child, t0);
  } finally {
    await stop(child);
  }
}

/** Start times of several daemons, alternating between them round by round so a noisy machine weighs on each alike. */
export async function alternateStartTimes(specs: DaemonSpec[], rounds: number): Promise<number[][]> {
  const out = specs.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) for (const [k, s] of specs.entries()) out[k]!.push(await startTime(s));
  return out;
}

/** How long after its first answer a daemon's idle memory is read again, every side alike. */
export const SETTLE_MS = 15_000;

/** Idle memory at `idleMs` and `settleMs` after the first answer, no request in between but the one status answer. */
async function idleMemory(pid: number, idleMs: number, settleMs: number): Promise<Pick<DaemonFigures, 'idle' | 'settled'>> {
  const t = performance.now();
  await new Promise((r) => setTimeout(r, idleMs));
  const idle = memory(pid);
  await new Promise((r) => setTimeout(r, Math.max(0, settleMs - (performance.now() - t))));
  return { idle, settled: memory(pid) };
}

/** Idle memory only (for the floor). */
async function measureIdle(spec: DaemonSpec, startSamples: number[], idleMs: number, settleMs: number): Promise<DaemonFigures> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spec.start(port);
  try {
    await waitAnswering(port, child, t0);
    const { idle, settled } = await idleMemory(child.pid!, idleMs, settleMs);
    return { label: spec.label, startSamples, start: summarize(startSamples), idle, settled, afterLoad: { ...idle, requests: 0 }, post: {}, loads: {} };
  } finally {
    await stop(child);
  }
}

/** Everything but the start time, on one long-running instance. */
export async function measureDaemon(spec: DaemonSpec, startSamples: number[], opts: { posts: number; seconds: number; idleMs: number; settleMs: number }): Promise<DaemonFigures> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spec.start(port);
  try {
    await waitAnswering(port, child, t0);
    const { idle, settled } = await idleMemory(child.pid!, opts.idleMs, opts.settleMs);

    const post: DaemonFigures['post'] = {};
    let sent = 0;
    const posts = async (commands: Record<string, unknown>): Promise<void> => {
    for (const [name, params] of Object.entries(commands)) {
      const samples: number[] = [];
      for (let i = 0; i < opts.posts + 2; i++) {
        const s = performance.now();
        const r = await http(port, 'POST', '/v1/commands/?wait=true', { name, params });
        const ms = performance.now() - s;
        sent++;
        if (r.status !== 200) throw new Error(`${spec.label}: POST ${name} answered ${r.status}: ${r.body.slice(0, 300)}`);
        const rec = JSON.parse(r.body) as { command_status?: string; command_error?: unknown };
        if (rec.command_status !== 'SUCCEEDED') throw new Error(`${spec.label}: ${name} ended ${rec.command_status}: ${JSON.stringify(rec.command_error).slice(0, 300)}`);
        if (i >= 2) samples.push(ms); // the first two warm caches on both sides
      }
      post[name] = { samples, lat: summarize(samples) };
    }
    };
    await posts(spec.commands);

    const loads: Record<string, LoadResult> = {};
    for (const path of ['/v1/status', '/v1/commands/']) {
      for (const c of [1, 16]) {
        const r = await load(port, path, c, opts.seconds);
        loads[`${path} c${c}`] = r;
        sent += r.requests;
        if (r.non2xx) console.log(`  ${spec.label}: ${r.non2xx} non-2xx answers to ${path} at ${c} connections`);
      }
    }
    await posts(spec.extraCommands ?? {});
    const list = JSON.parse((await http(port, 'GET', '/v1/commands/')).body) as { commands?: unknown[] };
    const records = { kept: list.commands?.length ?? NaN, posted: Object.values(post).reduce((a, p) => a + p.samples.length + 2, 0) };
    const after = memory(child.pid!);
    return { label: spec.label, startSamples, start: summarize(startSamples), idle, settled, afterLoad: { ...after, requests: sent }, records, post, loads };
  } finally {
    await stop(child);
  }
}

export async function benchDaemon(opts: { quick?: boolean } = {}): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const measure = { starts: opts.quick ? 3 : 10, posts: opts.quick ? 10 : 50, seconds: opts.quick ? 2 : 5, idleMs: opts.quick ? 500 : 2000, settleMs: opts.quick ? 500 : SETTLE_MS };
  const oursSpecV = oursSpec();
  const floor = floorSpec();
  const ipaSpec = ipaSpecFromEnv();
  let floorFig: DaemonFigures;
  let ours: DaemonFigures;
  let ipa: DaemonFigures | null = null;
  let ipaError: string | undefined;
  try {
    let starts: number[][];
    try {
      starts = await alternateStartTimes(ipaSpec ? [oursSpecV, floor, ipaSpec] : [oursSpecV, floor], measure.starts);
    } catch (e) {
      if (!ipaSpec) throw e;
      ipaError = (e as Error).message;
      starts = await alternateStartTimes([oursSpecV, floor], measure.starts);
    }
    floorFig = await measureIdle(floor, starts[1]!, measure.idleMs, measure.settleMs);
    ours = await measureDaemon(oursSpecV, starts[0]!, measure);
    if (ipaSpec && !ipaError) {
      try {
        ipa = await measureDaemon(ipaSpec, starts[2]!, measure);
      } catch (e) {
        ipaError = (e as Error).message;
      }
    }
  } finally {
    oursSpecV.cleanup?.();
    floor.cleanup?.();
  }
  if (ipaError) console.log(`daemon bench: IPA could not be measured (${ipaError}); using its recorded figures`);
  const peer = ipa ? `IPA 9.4.1 (measured, same client)` : RECORDED;
  const o = ours;
  const L = (k: string) => o.loads[k]!;
  const P = (k: string, f: (l: LoadResult) => number, recorded?: number) => (ipa ? f(ipa.loads[k]!) : recorded ?? NaN);
  const section = 'daemon';
  const oursLabel = 'inband-agent serve';
  const rows: Row[] = [
    { section, what: 'exec → API answering, median', ours: oursLabel, oursValue: o.start.median, peer, peerValue: ipa ? ipa.start.median : IPA_RECORDED.startMs, unit: 'ms', better: 'lower', note: `n=${o.start.n}, ours min ${o.start.min.toFixed(0)} max ${o.start.max.toFixed(0)}; target ≤ 150` },
    { section, what: 'exec → API answering, median', ours: oursLabel, oursValue: o.start.median, peer: floorFig.label, peerValue: floorFig.start.median, unit: 'ms', better: 'lower', note: `floor min ${floorFig.start.min.toFixed(0)}; what the agent adds; target ≤ 1.2×` },
    { section, what: 'VmRSS idle', ours: oursLabel, oursValue: o.idle.rssMiB, peer, peerValue: ipa ? ipa.idle.rssMiB : IPA_RECORDED.rssIdleMiB, unit: 'MiB', better: 'lower', note: 'target ≤ 50' },
    { section, what: 'VmRSS idle', ours: oursLabel, oursValue: o.idle.rssMiB, peer: floorFig.label, peerValue: floorFig.idle.rssMiB, unit: 'MiB', better: 'lower' },
    { section, what: `VmRSS idle, settled (${(measure.settleMs / 1000).toFixed(0)} s after the first answer: V8's idle collection has run; the rows above read it at ${(measure.idleMs / 1000).toFixed(0)} s)`, ours: oursLabel, oursValue: o.settled.rssMiB, peer, peerValue: ipa ? ipa.settled.rssMiB : NaN, unit: 'MiB', better: 'lower' },
    { section, what: `VmRSS idle, settled (${(measure.settleMs / 1000).toFixed(0)} s)`, ours: oursLabel, oursValue: o.settled.rssMiB, peer: floorFig.label, peerValue: floorFig.settled.rssMiB, unit: 'MiB', better: 'lower' },
    { section, what: `VmRSS after ${o.afterLoad.requests.toLocaleString('en')} requests`, ours: oursLabel, oursValue: o.afterLoad.rssMiB, peer, peerValue: ipa ? ipa.afterLoad.rssMiB : NaN, unit: 'MiB', better: 'lower', note: `VmHWM ours ${o.afterLoad.hwmMiB.toFixed(0)}${ipa ? `, IPA ${ipa.afterLoad.hwmMiB.toFixed(0)}` : ''} MiB; records kept ours ${o.records?.kept}/${o.records?.posted}${ipa ? `, IPA ${ipa.records?.kept}/${ipa.records?.posted}` : ''}` },
    { section, what: 'GET /v1/status req/s, 1 connection', ours: oursLabel, oursValue: L('/v1/status c1').rps, peer, peerValue: P('/v1/status c1', (l) => l.rps, IPA_RECORDED.statusRps1), unit: 'req/s', better: 'higher', note: `${L('/v1/status c1').tool}; target ≥ 6,000` },
    { section, what: 'GET /v1/status req/s, 16 connections', ours: oursLabel, oursValue: L('/v1/status c16').rps, peer, peerValue: P('/v1/status c16', (l) => l.rps), unit: 'req/s', better: 'higher' },
    { section, what: 'GET /v1/status p99, 16 connections', ours: oursLabel, oursValue: L('/v1/status c16').p99Ms, peer, peerValue: P('/v1/status c16', (l) => l.p99Ms, IPA_RECORDED.statusP99At16Ms), unit: 'ms', better: 'lower', note: `target ≤ 2${L('/v1/status c16').tool === 'autocannon' ? '; autocannon counts whole ms: 0 is under 1 ms' : ''}` },
    { section, what: 'GET /v1/commands/ req/s, 1 connection', ours: oursLabel, oursValue: L('/v1/commands/ c1').rps, peer, peerValue: P('/v1/commands/ c1', (l) => l.rps), unit: 'req/s', better: 'higher', note: `${Object.keys(oursSpecV.commands).length * (measure.posts + 2)} records on each side` },
    { section, what: 'GET /v1/commands/ req/s, 16 connections', ours: oursLabel, oursValue: L('/v1/commands/ c16').rps, peer, peerValue: P('/v1/commands/ c16', (l) => l.rps), unit: 'req/s', better: 'higher' },
    { section, what: 'GET /v1/commands/ p99, 16 connections', ours: oursLabel, oursValue: L('/v1/commands/ c16').p99Ms, peer, peerValue: P('/v1/commands/ c16', (l) => l.p99Ms), unit: 'ms', better: 'lower' },
    { section, what: 'POST clean.get_clean_steps wait=true, median', ours: oursLabel, oursValue: o.post['clean.get_clean_steps']!.lat.median, peer, peerValue: ipa ? ipa.post['clean.get_clean_steps']!.lat.median : NaN, unit: 'ms', better: 'lower' },
    { section, what: 'POST bmc.get_info wait=true, median', ours: `${oursLabel} (simulated BMC)`, oursValue: o.post['bmc.get_info']!.lat.median, peer: 'IPA has no in-band BMC read', peerValue: NaN, unit: 'ms', better: 'lower' },
  ];
  return { rows, raw: { ours, floor: floorFig, ipa, ipaError, ipaRecorded: ipa ? undefined : IPA_RECORDED, method: measure } };
}
