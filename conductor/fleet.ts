/**
 * Rotating a fleet: many nodes through one Ironic, each by the path it allows.
 *
 * Per node, decided from what Ironic and the store say at the moment the node
 * comes up (so a restarted run decides afresh and correctly):
 *  - busy in Ironic (a `reservation`, a provision transition in flight, or 409
 *    NodeLocked on a call): put back in the queue with back-off, never fought over;
 *  - a pending store entry whose user Ironic already logs in as: an earlier run
 *    committed it and was stopped before recording it — finished (proven, marked
 *    current, previous user retired);
 *  - the credential Ironic holds logs in (its password from the store's current
 *    entry, or the fleet's initial password): **out-of-band** (fleet-oob.ts), no
 *    reboot, any provision state;
 *  - it does not log in and the node may be cleaned (manageable/available, not
 *    in maintenance): **in-band**, the manual clean of rotate.ts;
 *  - otherwise: reported as needing attention, nothing changed.
 *  A BMC that does not answer or has no free session is retried later with
 *  exponential back-off; a refused password is never retried (lock-out).
 *  A node is reported rotated only when the new user logs in, Ironic holds it
 *  and the previous user reads back disabled; a rotation whose retirement could
 *  not be done is taken up again later (only the retirement is left), and a run
 *  that gives up on it reports it failed and resumable: the next run finishes it.
 *
 * Resumable: the store's pending entry of a node is reused (never a second
 * one), the engine's per-node journal rolls back a change cut short, and the
 * run file (`fleet-run.json`, no secrets) lists the nodes this run already
 * rotated, so a restarted run skips them and continues with the rest.
 */
import { constants as fsc } from 'node:fs';
import { access, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Secret } from '../service/secret.js';
import { endpointFromDriverInfo, type BmcEndpoint } from './bmc-proof.js';
import { BmcGate, type BmcAccess } from './fleet-bmc.js';
import { finishCommitted, retireVerified, rotateOutOfBand, type OobRecord } from './fleet-oob.js';
import { IronicApiError, type IronicApi, type IronicNodeView } from './ironic-api.js';
import { nextUsername, type RotationRecord } from './rotate.js';
import type { SecretEntry, SecretStore } from './secret-store.js';
import { makeDir } from '../service/journal.js';

export interface FleetSelection {
  /** Node names or UUIDs; every one must exist. */
  nodes?: string[];
  all?: boolean;
  driver?: string;
  resourceClass?: string;
  provisionState?: string;
}

/** A usage error: bad input found before anything changed (CLI exit 2). */
export class FleetUsageError extends Error {
  constructor(readonly flag: string, message: string) {
    super(message);
    this.name = 'FleetUsageError';
  }
}

export type FleetIronic = Pick<IronicApi, 'node' | 'patchDriverInfo' | 'call'>;

/** The nodes a selection names, read from Ironic; unknown nodes or an empty match are usage errors. */
export async function selectNodes(ironic: FleetIronic, sel: FleetSelection): Promise<IronicNodeView[]> {
  if (sel.nodes?.length) {
    if (sel.all) throw new FleetUsageError('--all', 'give NODE... or --all, not both');
    const found: IronicNodeView[] = [];
    const unknown: string[] = [];
    for (const ident of [...new Set(sel.nodes)]) {
      try {
        found.push(await ironic.node(ident));
      } catch (err) {
        if (err instanceof IronicApiError && err.status === 404) unknown.push(ident);
        else throw err;
      }
    }
    if (unknown.length) throw new FleetUsageError('NODE', `unknown node${unknown.length > 1 ? 's' : ''} in Ironic: ${unknown.join(', ')}`);
    const uuids = new Set<string>();
    return found.filter((n) => (uuids.has(n.uuid) ? false : (uuids.add(n.uuid), true)));
  }
  if (!sel.all) throw new FleetUsageError('NODE', 'give one or more NODEs, or --all');
  const q = new URLSearchParams({ limit: '200' });
  if (sel.driver) q.set('driver', sel.driver);
  if (sel.resourceClass) q.set('resource_class', sel.resourceClass);
  if (sel.provisionState) q.set('provision_state', sel.provisionState);
  const nodes: IronicNodeView[] = [];
  let path: string | null = `/v1/nodes/detail?${q}`;
  while (path) {
    const page = (await ironic.call('GET', path, undefined, [200], 'list nodes')) as { nodes: IronicNodeView[]; next?: string };
    nodes.push(...page.nodes);
    path = page.next && page.nodes.length ? page.next.replace(/^https?:\/\/[^/]+/, '') : null;
  }
  if (!nodes.length) {
    const f = [sel.driver && `--driver ${sel.driver}`, sel.resourceClass && `--resource-class ${sel.resourceClass}`, sel.provisionState && `--provision-state ${sel.provisionState}`].filter(Boolean);
    throw new FleetUsageError(f.length ? f.join(' ') : '--all', `no node in Ironic matches ${f.length ? f.join(', ') : '--all'}`);
  }
  return nodes;
}

/**
 * Stops before the first node when the store or the journal directory cannot be
 * written (e.g. a read-only file system, a full disk, a store file of another
 * user): a rotation must be able to record its pending password before the BMC
 * sees it. A directory the probe made is removed again when a later check
 * fails, so a refused run leaves nothing behind.
 */
export async function checkWritable(store: SecretStore, paths: { storePath?: string; journalRoot: string; runFile: string }): Promise<void> {
  const made: string[] = [];
  try {
    await probeAll(store, paths, made);
  } catch (err) {
    for (const d of made.reverse()) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

async function probeAll(store: SecretStore, paths: { storePath?: string; journalRoot: string; runFile: string }, made: string[]): Promise<void> {
  const probeDir = async (dir: string, what: string): Promise<void> => {
    try {
      const first = await makeDir(dir);
      if (first) made.push(first);
      const probe = join(dir, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
      const fh = await open(probe, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      await fh.sync();
      await fh.close();
      await unlink(probe);
    } catch (err) {
      throw new FleetUsageError(what, `${what} ${dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was changed`);
    }
  };
  if (store.kind === 'file' && paths.storePath) {
    await probeDir(dirname(paths.storePath), '--store-path');
    for (const f of [paths.storePath, `${paths.storePath}.key`]) {
      try {
        await access(f, fsc.R_OK | fsc.W_OK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FleetUsageError('--store-path', `${f} cannot be read and written (${(err as NodeJS.ErrnoException).code}); nothing was changed`);
      }
    }
  }
  try {
    await store.history('inband-fleet-probe');
  } catch (err) {
    throw new FleetUsageError('--store', `the ${store.kind} store cannot be read: ${(err as Error).message}; nothing was changed`);
  }
  await probeDir(paths.journalRoot, '--state-dir');
  await probeDir(dirname(paths.runFile), '--records-dir');
}

export type NodeOutcome = 'rotated' | 'failed' | 'needs-attention' | 'skipped';

export interface FleetNodeResult {
  node: string;
  uuid: string;
  path: 'out-of-band' | 'in-band' | 'none';
  outcome: NodeOutcome;
  detail: string;
  /** Times the node was taken up (busy and BMC back-offs count). */
  attempts: number;
  /** From the first take-up to the outcome. */
  durationMs: number;
  ipmiSessions: number;
  ironicCalls: number;
  /** A failure the next run resumes (a pending entry kept). */
  resumable: boolean;
  /** The credential Ironic holds at the end. */
  ironicUser: string | null;
  record?: OobRecord | RotationRecord;
}

export interface FleetProgress {
  total: number;
  rotated: number;
  failed: number;
  attention: number;
  skipped: number;
  remaining: number;
  startedAt: number;
  /** Nodes finished in this process (for the rate). */
  finishedHere: number;
}

export interface FleetResult {
  run: { id: string; startedAt: string; finishedAt: string; resumed: boolean; selection: string };
  totals: { nodes: number; rotated: number; failed: number; needsAttention: number; skipped: number; outOfBand: number; inBand: number };
  nodes: FleetNodeResult[];
  /** The rotator's peak resident set, KiB. */
  maxRssKiB: number;
}

export interface FleetOptions {
  ironic: FleetIronic;
  store: SecretStore;
  access: BmcAccess;
  usernames: readonly [string, string];
  /** The password of the user Ironic logs in as, for nodes the store has no current entry for (the fleet's enrolment password). */
  initialPassword?: Secret;
  concurrency: number;
  /** Per-BMC gap between sessions, ms. */
  bmcIntervalMs: number;
  /** Per-node engine journals live under `<journalRoot>/<uuid>/`. */
  journalRoot: string;
  runFile: string;
  /** The in-band path (rotate.ts) for a node that may be cleaned; without it such nodes need attention. */
  inBand?: (node: IronicNodeView, pending: { entry: SecretEntry; secret: Secret } | undefined) => Promise<RotationRecord>;
  retirePrevious?: boolean;
  /** Back-off for busy nodes and unanswering BMCs: first delay, cap (ms), and how many take-ups before giving up. */
  backoff?: { initialMs: number; maxMs: number; attempts: number };
  /** Ironic API calls per node uuid so far (the CLI counts them at its fetch). */
  ironicCalls?: (uuid: string) => number;
  /** Start a new run even when the run file holds an unfinished one. */
  newRun?: boolean;
  selectionKey: string;
  onProgress?: (p: FleetProgress) => void;
  onNode?: (r: FleetNodeResult) => void | Promise<void>;
  log?: (line: string) => void;
  now?: () => Date;
}

interface RunFile {
  format: 'inband-fleet-run/1';
  id: string;
  selection: string;
  startedAt: string;
  finishedAt: string | null;
  /**
   * Per node: `started` (with the user Ironic held then, to retire) once this
   * run is about to change it, then its outcome.
   */
  nodes: Record<string, { outcome: NodeOutcome | 'started'; at: string; path: FleetNodeResult['path']; previous?: string }>;
}

/** What one take-up knows of this run: when it started and what it noted for the node. */
interface RunContext {
  startedAt: string;
  previous: string | undefined;
  noteStarted: (previous: string) => Promise<void>;
}

async function loadRun(path: string): Promise<RunFile | null> {
  try {
    const r = JSON.parse(await readFile(path, 'utf8')) as RunFile;
    return r.format === 'inband-fleet-run/1' ? r : null;
  } catch {
    return null;
  }
}

async function saveRun(path: string, run: RunFile): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
  try {
    await fh.writeFile(JSON.stringify(run, null, 1) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export function selectionKey(sel: FleetSelection): string {
  const s = sel.nodes?.length ? `nodes:${[...new Set(sel.nodes)].sort().join(',')}` : `all:driver=${sel.driver ?? ''};rc=${sel.resourceClass ?? ''};ps=${sel.provisionState ?? ''}`;
  return s.length > 200 ? `sha256:${createHash('sha256').update(s).digest('hex')}` : s;
}

/** Ironic busy with the node: a conductor holds its lock, or a provision transition is under way. */
function busyReason(n: IronicNodeView): string | null {
  if (n.reservation) return `locked by conductor ${String(n.reservation)}`;
  if (n.target_provision_state) return `in transition ${n.provision_state} → ${n.target_provision_state}`;
  if (n.target_power_state) return `power transition to ${n.target_power_state} under way`;
  return null;
}

type TakeUp = Omit<FleetNodeResult, 'attempts' | 'durationMs' | 'ironicCalls'>;

class Retry extends Error {
  /**
   * `final`: what to report if the run gives up on the node (e.g. a rotation
   * whose previous user is still enabled: failed, resumable); `sessions`: RMCP+
   * sessions this take-up opened.
   */
  constructor(readonly kind: 'busy' | 'bmc', message: string, readonly final?: TakeUp, readonly sessions = 0) {
    super(message);
  }
}

export async function runFleet(opts: FleetOptions, nodes: readonly IronicNodeView[]): Promise<FleetResult> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new FleetUsageError('--concurrency', '--concurrency must be a whole number ≥ 1');
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const backoff = opts.backoff ?? { initialMs: 2000, maxMs: 30_000, attempts: 8 };
  const gate = new BmcGate(opts.bmcIntervalMs);

  let run = opts.newRun ? null : await loadRun(opts.runFile);
  const resumed = !!run && run.finishedAt === null && run.selection === opts.selectionKey;
  if (!resumed) {
    run = { format: 'inband-fleet-run/1', id: randomBytes(6).toString('hex'), selection: opts.selectionKey, startedAt: now().toISOString(), finishedAt: null, nodes: {} };
  }
  const theRun = run as RunFile;
  await saveRun(opts.runFile, theRun);
  let saving = Promise.resolve();
  const persist = (): Promise<void> => (saving = saving.then(() => saveRun(opts.runFile, theRun)).catch((err: Error) => log(`fleet: run file ${opts.runFile} not written: ${err.message}`)));

  const results = new Map<string, FleetNodeResult>();
  const progress: FleetProgress = { total: nodes.length, rotated: 0, failed: 0, attention: 0, skipped: 0, remaining: nodes.length, startedAt: Date.now(), finishedHere: 0 };
  type Item = { node: IronicNodeView; attempt: number; notBefore: number; firstAt: number | null; sessions: number };
  const queue: Item[] = [];
  for (const n of nodes) {
    const done = theRun.nodes[n.uuid];
    if (resumed && done?.outcome === 'rotated') {
      const r: FleetNodeResult = { node: n.name ?? n.uuid, uuid: n.uuid, path: done.path, outcome: 'skipped', detail: `rotated earlier in this run (${done.at})`, attempts: 0, durationMs: 0, ipmiSessions: 0, ironicCalls: 0, resumable: false, ironicUser: typeof n.driver_info.ipmi_username === 'string' ? n.driver_info.ipmi_username : null };
      results.set(n.uuid, r);
      progress.skipped++;
      progress.remaining--;
      continue;
    }
    queue.push({ node: n, attempt: 0, notBefore: 0, firstAt: null, sessions: 0 });
  }
  opts.onProgress?.({ ...progress });

  const finish = async (item: Item, r: TakeUp): Promise<void> => {
    const full: FleetNodeResult = { ...r, ipmiSessions: item.sessions + r.ipmiSessions, attempts: item.attempt, durationMs: Date.now() - (item.firstAt ?? Date.now()), ironicCalls: opts.ironicCalls?.(item.node.uuid) ?? 0 };
    results.set(item.node.uuid, full);
    const previous = theRun.nodes[item.node.uuid]?.previous;
    theRun.nodes[item.node.uuid] = { outcome: full.outcome, at: now().toISOString(), path: full.path, ...(previous ? { previous } : {}) };
    await persist();
    if (full.outcome === 'rotated') progress.rotated++;
    else if (full.outcome === 'failed') progress.failed++;
    else if (full.outcome === 'needs-attention') progress.attention++;
    progress.remaining--;
    progress.finishedHere++;
    await opts.onNode?.(full);
    opts.onProgress?.({ ...progress });
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (!queue.length) return;
      const t = Date.now();
      let idx = queue.findIndex((q) => q.notBefore <= t);
      if (idx < 0) {
        const soonest = Math.min(...queue.map((q) => q.notBefore));
        await new Promise((r) => setTimeout(r, Math.max(10, soonest - t)));
        continue;
      }
      const item = queue.splice(idx, 1)[0]!;
      idx = -1;
      item.attempt++;
      item.firstAt ??= Date.now();
      try {
        const uuid = item.node.uuid;
        const ctx: RunContext = {
          startedAt: theRun.startedAt,
          previous: theRun.nodes[uuid]?.previous,
          noteStarted: async (previous) => {
            theRun.nodes[uuid] = { outcome: 'started', at: now().toISOString(), path: 'none', previous };
            await persist();
          },
        };
        const r = await rotateNode(opts, uuid, gate, log, ctx);
        await finish(item, r);
      } catch (err) {
        if (err instanceof Retry) item.sessions += err.sessions;
        if (err instanceof Retry && item.attempt < backoff.attempts) {
          const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (item.attempt - 1)) * (0.75 + Math.random() * 0.5);
          log(`fleet: ${item.node.name ?? item.node.uuid}: ${err.message}; again in ${Math.round(delay / 1000)} s (take-up ${item.attempt} of ${backoff.attempts})`);
          item.notBefore = Date.now() + delay;
          queue.push(item);
          continue;
        }
        const msg = (err as Error).message;
        if (err instanceof Retry && err.final) {
          await finish(item, { ...err.final, detail: `${err.final.detail} (gave up after ${item.attempt} take-ups; the next run finishes it)` });
          continue;
        }
        const held = await opts.ironic.node(item.node.uuid).then((n) => (typeof n.driver_info.ipmi_username === 'string' ? n.driver_info.ipmi_username : null)).catch(() => null);
        await finish(item, {
          node: item.node.name ?? item.node.uuid, uuid: item.node.uuid, path: 'none',
          outcome: err instanceof Retry && err.kind === 'busy' ? 'needs-attention' : 'failed',
          detail: err instanceof Retry ? `${msg} (gave up after ${item.attempt} take-ups)` : msg, ipmiSessions: 0, resumable: false, ironicUser: held,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, Math.max(1, queue.length)) }, () => worker()));
  await saving;
  theRun.finishedAt = now().toISOString();
  await saveRun(opts.runFile, theRun);

  const list = nodes.map((n) => results.get(n.uuid)!).filter(Boolean);
  return {
    run: { id: theRun.id, startedAt: theRun.startedAt, finishedAt: theRun.finishedAt, resumed, selection: theRun.selection },
    totals: {
      nodes: list.length,
      rotated: list.filter((r) => r.outcome === 'rotated').length,
      failed: list.filter((r) => r.outcome === 'failed').length,
      needsAttention: list.filter((r) => r.outcome === 'needs-attention').length,
      skipped: list.filter((r) => r.outcome === 'skipped').length,
      outOfBand: list.filter((r) => r.path === 'out-of-band' && r.outcome === 'rotated').length,
      inBand: list.filter((r) => r.path === 'in-band' && r.outcome === 'rotated').length,
    },
    nodes: list,
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}

const CLEANABLE = ['manageable', 'available'];

/** One take-up of one node: decides the path and runs it; throws Retry to be queued again. */
async function rotateNode(opts: FleetOptions, uuid: string, gate: BmcGate, log: (l: string) => void, run: RunContext): Promise<TakeUp> {
  let node: IronicNodeView;
  try {
    node = await opts.ironic.node(uuid);
  } catch (err) {
    if (err instanceof IronicApiError && (err.status === 409 || err.status === 503 || err.status === undefined)) throw new Retry('busy', `Ironic: ${err.message}`);
    throw err;
  }
  const name = node.name ?? uuid;
  const held = typeof node.driver_info.ipmi_username === 'string' ? node.driver_info.ipmi_username : null;
  const base = { node: name, uuid, ironicUser: held };
  const busy = busyReason(node);
  if (busy) throw new Retry('busy', `busy in Ironic: ${busy}`);
  if (node.maintenance) return { ...base, path: 'none', outcome: 'needs-attention', detail: `in maintenance${node.maintenance_reason ? ` (${String(node.maintenance_reason)})` : ''}: an operator's hold, not rotated`, ipmiSessions: 0, resumable: false };
  let bmc: BmcEndpoint;
  try {
    bmc = endpointFromDriverInfo(node.driver_info);
  } catch (err) {
    return { ...base, path: 'none', outcome: 'needs-attention', detail: (err as Error).message, ipmiSessions: 0, resumable: false };
  }
  if (!held) return { ...base, path: 'none', outcome: 'needs-attention', detail: 'driver_info has no ipmi_username', ipmiSessions: 0, resumable: false };
  const paced = <T>(fn: () => Promise<T>): Promise<T> => gate.run(bmc, fn);
  const journalDir = join(opts.journalRoot, uuid);

  // What the store knows: a pending entry from an earlier run, and the current one.
  const history = await opts.store.history(uuid);
  const pendingEntry = [...history].reverse().find((e) => e.state === 'pending');
  let pending: { entry: SecretEntry; secret: Secret } | undefined;
  if (pendingEntry) pending = { entry: pendingEntry, secret: await opts.store.getSecret(uuid, pendingEntry.id) };
  const current = await opts.store.getCurrent(uuid);
  try {
    if (pending && pending.entry.username === held) {
      const prev = run.previous && run.previous !== held ? run.previous : current && current.entry.username !== held ? current.entry.username : nextUsername(opts.usernames, held);
      const rec = await finishCommitted({
        node, ironic: opts.ironic, store: opts.store, bmc, access: opts.access, journalDir, paced, pending, previous: prev,
        ...(opts.retirePrevious !== undefined ? { retirePrevious: opts.retirePrevious } : {}), log,
      });
      return retireLeft({ ...base, path: 'out-of-band', outcome: rec.outcome === 'rotated' ? 'rotated' : 'failed', detail: rec.outcome === 'rotated' ? `finished a rotation an earlier run had committed (${held})` : `${rec.failedStep}: ${rec.error}`, ipmiSessions: rec.ipmiSessions, resumable: rec.resumable, ironicUser: held, record: rec });
    }
    const next = nextUsername(opts.usernames, held);
    if (pending && pending.entry.username !== next) {
      // Neither Ironic's user nor the one this rotation writes (the pair changed): not resumable as it is.
      await opts.store.markFailed(uuid, pending.entry.id, `abandoned: its user ${pending.entry.username} is neither Ironic's (${held}) nor the next (${next})`);
      pending.secret.dispose();
      pending = undefined;
    }
    if (!pending && current && current.entry.username === held && run.previous && run.previous !== held && Date.parse(current.entry.updatedAt) >= Date.parse(run.startedAt)) {
      // Rotated earlier in this run, and stopped before its record: only the previous user's retirement may be missing.
      let detail = `rotated earlier in this run (${run.previous} → ${held}, entry ${current.entry.id} current since ${current.entry.updatedAt})`;
      try {
        if (opts.retirePrevious === false) return { ...base, path: 'out-of-band', outcome: 'rotated', detail, ipmiSessions: 0, resumable: false };
        const r = await retireVerified({ access: opts.access, bmc }, { username: held, password: current.secret }, run.previous, paced);
        if (r.ok) return { ...base, path: 'out-of-band', outcome: 'rotated', detail: `${detail}; previous user ${run.previous} retired now (${r.detail})`, ipmiSessions: r.sessions, resumable: false };
        detail += `; retire-previous: previous BMC user ${run.previous} not retired: ${r.detail}`;
        const final: TakeUp = { ...base, path: 'out-of-band', outcome: r.transient ? 'failed' : 'needs-attention', detail, ipmiSessions: 0, resumable: true };
        if (r.transient) throw new Retry('bmc', detail, final, r.sessions);
        return { ...final, ipmiSessions: r.sessions };
      } finally {
        current.secret.dispose();
      }
    }
    const known: Secret | undefined = current && current.entry.username === held ? current.secret : opts.initialPassword;
    let why: string;
    if (known) {
      const probe = await paced(() => opts.access.login(bmc, { username: held, password: known }));
      if (probe.verdict === 'ok') {
        if (run.previous === undefined || !pending) await run.noteStarted(held);
        const rec = await rotateOutOfBand({
          node, ironic: opts.ironic, store: opts.store, bmc, access: opts.access,
          current: { username: held, password: known }, nextUsername: next, journalDir, paced,
          ...(pending ? { pending } : {}), ...(opts.retirePrevious !== undefined ? { retirePrevious: opts.retirePrevious } : {}), log,
        });
        const ironicUser = rec.current.username;
        return retireLeft({
          ...base, path: 'out-of-band', outcome: rec.outcome === 'rotated' ? 'rotated' : 'failed',
          detail: rec.outcome === 'rotated' ? `${held} → ${next}${rec.warnings.length ? ` (${rec.warnings.length} warning(s))` : ''}` : `${rec.failedStep}: ${rec.error}${rec.resumable ? ' (resumable: the next run continues it)' : ' (rolled back)'}`,
          ipmiSessions: rec.ipmiSessions + 1, resumable: rec.resumable, ironicUser, record: rec,
        });
      }
      if (probe.verdict === 'busy' || probe.verdict === 'unreachable') throw new Retry('bmc', `BMC ${bmc.host}:${bmc.port}: ${probe.detail}`);
      why = `the credential Ironic holds (${held}, password from ${current && current.entry.username === held ? 'the store' : 'the initial password'}) does not log in: ${probe.detail}`;
    } else {
      why = `the store has no password for ${held}, the user Ironic logs in as (no current entry${opts.initialPassword ? '' : ', no initial password given'})`;
    }
    if (opts.inBand && CLEANABLE.includes(node.provision_state)) {
      if (run.previous === undefined || !pending) await run.noteStarted(held);
      const rec = await opts.inBand(node, pending && pending.entry.username === next ? pending : undefined);
      const unretired = rec.outcome === 'rotated' || rec.failedStep === 'retire-previous' ? rec.steps.find((st) => st.step === 'retire-previous' && st.status === 'failed') : undefined;
      if (unretired) {
        // The clean rotated it but the previous user is still enabled: not done. The next
        // take-up finds the new entry current and only retires (out-of-band, read back).
        const detail = `in-band (manual clean): ${held} → ${rec.next.username}; retire-previous: previous BMC user ${held} not retired: ${unretired.detail}`;
        throw new Retry('bmc', detail, { ...base, path: 'in-band', outcome: 'failed', detail, ipmiSessions: 0, resumable: true, ironicUser: rec.current.username, record: rec }, 1);
      }
      return {
        ...base, path: 'in-band', outcome: rec.outcome === 'rotated' ? 'rotated' : 'failed',
        detail: rec.outcome === 'rotated' ? `in-band (manual clean): ${held} → ${rec.next.username}; ${why}` : `in-band ${rec.failedStep}: ${rec.error}`,
        ipmiSessions: 1, resumable: rec.next.secretState === 'pending', ironicUser: rec.current.username, record: rec,
      };
    }
    return {
      ...base, path: 'none', outcome: 'needs-attention',
      detail: `${why}; node is ${node.provision_state}${CLEANABLE.includes(node.provision_state) ? ' (in-band rotation not enabled)' : ', which cannot be cleaned in-band'}: nothing changed`,
      ipmiSessions: known ? 1 : 0, resumable: false,
    };
  } finally {
    if (pending) pending.secret.dispose();
  }
}

/**
 * A rotation done but for the previous user's retirement (the BMC busy or
 * silent when it was disabled): taken up again later in this run, which then
 * only retires; reported failed (resumable) if the run gives up. An answer that
 * waiting will not change (no such user, the never-lock-out rule) needs attention.
 */
function retireLeft(r: TakeUp): TakeUp {
  const rec = r.record as OobRecord | undefined;
  if (r.outcome !== 'failed' || rec?.failedStep !== 'retire-previous') return r;
  if (rec.retryable) throw new Retry('bmc', r.detail, { ...r, ipmiSessions: 0 }, r.ipmiSessions);
  return { ...r, outcome: 'needs-attention' };
}
