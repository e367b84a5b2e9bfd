/**
 * `inband-agent conductor rotate NODE... | --all [filters]`: the fleet run
 * (fleet.ts) from the command line — argument checks that stop before anything
 * changes (exit 2 naming the flag), a progress line on a terminal, a final
 * table or `--json`, one record per node under --records-dir.
 */
import { constants as fsc } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Secret } from '../service/secret.js';
import { conductorProver, IpmitoolBmcAccess } from './fleet-bmc.js';
import { checkWritable, FleetUsageError, runFleet, selectionKey, selectNodes, type FleetNodeResult, type FleetProgress, type FleetResult, type FleetSelection } from './fleet.js';
import { IronicApi, type FetchLike } from './ironic-api.js';
import { rotate } from './rotate.js';
import type { SecretStore } from './secret-store.js';
import type { CliIo } from './options.js';
import { makeDir } from '../service/journal.js';
import { FLEET_OPTIONS } from './commands.js';

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

export function isFleetRun(positionals: readonly string[], v: Values): boolean {
  return positionals.length > 1 || Object.keys(FLEET_OPTIONS).some((k) => v[k] !== undefined);
}

export interface FleetCliContext {
  io: CliIo;
  usage: (msg: string) => number;
  store: SecretStore;
  storePath: string;
  usernames: [string, string];
  cleanTimeoutMs: number;
  recordsDir: string;
  stateDir: string;
  agentCertificate?: string;
}

/** Counts Ironic calls per node and retries 503 (Ironic on sqlite under concurrent writes, an overloaded API) with back-off. */
export function fleetFetch(counts: Map<string, number>, base: FetchLike = (u, i) => fetch(u, i), sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): FetchLike {
  return async (url, init) => {
    const m = /\/v1\/nodes\/([^/?]+)/.exec(url);
    const key = m && m[1] !== 'detail' ? decodeURIComponent(m[1]!) : '*';
    for (let attempt = 1; ; attempt++) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const r = await base(url, init);
      if (r.status !== 503 || attempt >= 6) return r;
      await r.text().catch(() => '');
      await sleep(Math.min(8000, 250 * 2 ** attempt) * (0.75 + Math.random() * 0.5));
    }
  };
}

async function readAll(io: CliIo): Promise<string> {
  if (io.readStdin) return io.readStdin();
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function fleetMain(positionals: readonly string[], v: Values, ctx: FleetCliContext): Promise<number> {
  const { io, usage } = ctx;
  const sel: FleetSelection = { nodes: [...positionals] };
  if (v.all) sel.all = true;
  if (typeof v.driver === 'string') sel.driver = v.driver;
  if (typeof v['resource-class'] === 'string') sel.resourceClass = v['resource-class'];
  if (typeof v['provision-state'] === 'string') sel.provisionState = v['provision-state'];
  if (!sel.all && (sel.driver || sel.resourceClass || sel.provisionState)) return usage('--driver, --resource-class and --provision-state narrow --all');
  if (sel.all && positionals.length) return usage('--all: give NODE... or --all, not both');
  if (!sel.all && !positionals.length) return usage('give one or more NODEs, or --all');
  const concurrency = v.concurrency === undefined ? 8 : Number(v.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) return usage(`--concurrency must be a whole number from 1 to 256, got ${JSON.stringify(v.concurrency)}`);
  const interval = v['bmc-interval'] === undefined ? 1 : Number(v['bmc-interval']);
  if (!Number.isFinite(interval) || interval < 0 || interval > 60) return usage(`--bmc-interval must be 0..60 seconds, got ${JSON.stringify(v['bmc-interval'])}`);

  let initialPassword: Secret | undefined;
  if (v['initial-password-stdin']) {
    const text = (await readAll(io)).replace(/\r?\n$/, '');
    if (!text || text.includes('\n') || text.length > 20) return usage('--initial-password-stdin: standard input must hold one password of 1-20 characters on one line');
    initialPassword = Secret.fromString(text);
  }

  const counts = new Map<string, number>();
  const it = io.env.IRONIC_AUTH_TOKEN || io.env.OS_AUTH_TOKEN;
  const ironicUrl = v['ironic-url'] as string;
  const ironic = new IronicApi({ url: ironicUrl, ...(it ? { token: Secret.fromString(it) } : {}), fetch: fleetFetch(counts) });
  const runFile = join(ctx.recordsDir, 'fleet-run.json');
  let nodes;
  try {
    nodes = await selectNodes(ironic, sel);
    await checkWritable(ctx.store, { storePath: ctx.store.kind === 'file' ? ctx.storePath : undefined, journalRoot: ctx.stateDir, runFile });
  } catch (err) {
    if (err instanceof FleetUsageError) {
      io.stderr(`conductor rotate: ${err.message.includes(err.flag) ? '' : `${err.flag}: `}${err.message}\n`);
      return 2;
    }
    io.stderr(`conductor rotate: ${(err as Error).message}; nothing was changed\n`);
    return 1;
  }

  const tty = io.stderrIsTTY ?? (process.stderr.isTTY === true);
  const ipmitoolPath = typeof v.ipmitool === 'string' ? v.ipmitool : undefined;
  let lastDraw = 0;
  const draw = (p: FleetProgress, force = false): void => {
    if (!tty) return;
    const t = Date.now();
    if (!force && t - lastDraw < 500) return;
    lastDraw = t;
    io.stderr(`\r\x1b[K${progressLine(p, t)}`);
  };
  let latest: FleetProgress | undefined;
  const ticker = tty ? setInterval(() => latest && draw(latest, true), 1000) : undefined;
  let result: FleetResult;
  try {
    result = await runFleet({
      ironic, store: ctx.store, access: new IpmitoolBmcAccess(ipmitoolPath ? { ipmitoolPath } : {}),
      usernames: ctx.usernames, ...(initialPassword ? { initialPassword } : {}), concurrency, bmcIntervalMs: interval * 1000,
      journalRoot: ctx.stateDir, runFile, retirePrevious: v['keep-previous'] !== true, newRun: v['new-run'] === true,
      selectionKey: selectionKey(sel), ironicCalls: (uuid) => counts.get(uuid) ?? 0,
      ...(v['no-in-band'] ? {} : {
        inBand: (node, pending) => rotate({
          node: node.uuid, ironic, store: ctx.store, prover: conductorProver(ipmitoolPath), usernames: ctx.usernames,
          retirePrevious: v['keep-previous'] !== true, cleanTimeoutMs: ctx.cleanTimeoutMs, allowPlainArgs: v['allow-plain-args'] === true,
          ...(ctx.agentCertificate !== undefined ? { agentCertificate: ctx.agentCertificate } : {}), ...(pending ? { pending } : {}),
          log: (line) => !tty && io.stderr(line + '\n'),
        }),
      }),
      onProgress: (p) => {
        latest = p;
        draw(p);
      },
      onNode: async (r) => {
        if (r.record) {
          try {
            await writeNodeRecord(ctx.recordsDir, r);
          } catch (err) {
            io.stderr(`${tty ? '\r\x1b[K' : ''}conductor rotate: record of ${r.node} not kept: ${(err as Error).message}\n`);
          }
        }
        if (tty && r.outcome !== 'rotated') io.stderr(`\r\x1b[K${r.node}: ${r.outcome}: ${r.detail}\n`);
      },
      log: (line) => !tty && io.stderr(line + '\n'),
    }, nodes);
  } finally {
    if (ticker) clearInterval(ticker);
    initialPassword?.dispose();
  }
  if (latest) draw(latest, true);
  if (tty) io.stderr('\n');
  const out = { ...result, ironicCallsOutsideNodes: counts.get('*') ?? 0 };
  if (v.json) io.stdout(JSON.stringify(out, (k, val: unknown) => (k === 'record' ? undefined : val), 2) + '\n');
  else io.stdout(finalTable(result) + '\n');
  const t = result.totals;
  return t.failed || t.needsAttention ? 1 : result.nodes.some((n) => n.record && 'warnings' in n.record && n.record.warnings.length) ? 3 : 0;
}

export function progressLine(p: FleetProgress, t = Date.now()): string {
  const elapsedMin = (t - p.startedAt) / 60_000;
  const rate = elapsedMin > 0 ? p.finishedHere / elapsedMin : 0;
  const eta = rate > 0 ? p.remaining / rate : NaN;
  const etaText = Number.isFinite(eta) ? (eta >= 1 ? `${eta.toFixed(1)} min` : `${Math.round(eta * 60)} s`) : '—';
  return `rotated ${p.rotated}  failed ${p.failed}  attention ${p.attention}${p.skipped ? `  skipped ${p.skipped}` : ''}  remaining ${p.remaining}/${p.total}  ${rate.toFixed(1)} nodes/min  ETA ${etaText}`;
}

export function finalTable(r: FleetResult): string {
  const rows = r.nodes.map((n) => [n.node, n.path, n.outcome, `${(n.durationMs / 1000).toFixed(1)} s`, n.ironicUser ?? '—', n.detail.replace(/\s+/g, ' ').slice(0, 110)]);
  const head = ['NODE', 'PATH', 'OUTCOME', 'TIME', 'IRONIC USER', 'DETAIL'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  const t = r.totals;
  return [line(head), ...rows.map(line), '',
    `${t.nodes} node(s): ${t.rotated} rotated (${t.outOfBand} out-of-band, ${t.inBand} in-band), ${t.failed} failed, ${t.needsAttention} need attention${t.skipped ? `, ${t.skipped} already rotated in this run` : ''}; run ${r.run.id}${r.run.resumed ? ' (resumed)' : ''}`,
  ].join('\n');
}

/** `<dir>/<uuid>-<started>.json`, 0600, written whole. No secrets: records never hold one. */
async function writeNodeRecord(dir: string, r: FleetNodeResult): Promise<string> {
  await makeDir(dir);
  const started = (r.record as { startedAt?: string } | undefined)?.startedAt ?? new Date().toISOString();
  const file = join(dir, `${r.uuid.replace(/[^A-Za-z0-9._-]/g, '_')}-${started.replace(/[:.]/g, '-')}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
  try {
    await fh.writeFile(JSON.stringify(r, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return file;
}
