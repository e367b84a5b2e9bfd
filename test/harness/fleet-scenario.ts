/**
 * The fleet rotated twice with faults, on a FleetLab: what CI asserts
 * (N = 10) and what the benchmark reports (N = 100).
 *
 * Faults (about 10 % of the nodes, at least one of each kind):
 *  - stop: the node's ipmi_sim is SIGSTOPped the moment the engine's journal
 *    for it appears (mid-change), and continued `stopForMs` later;
 *  - retire: the node's ipmi_sim is SIGSTOPped the moment the rotator logs
 *    the node's new entry current (Ironic on the new user, the previous user's
 *    retirement next), and continued `stopForMs` later: what a loaded BMC's
 *    session timeouts do to the last step;
 *  - wrong: Ironic and the BMC hold another password than the one the
 *    rotator is given (its current credential does not log in; the node is
 *    active, so it cannot be cleaned in-band);
 *  - patch: the relay in front of Ironic refuses the node's PATCH in round 1;
 *  - locked: the node reads as reserved by another conductor for its first
 *    three GETs in round 1;
 *  - and the rotator itself is killed (SIGKILL) in round 1 once 40 % of the
 *    nodes are rotated, then started again.
 *
 * With the lab's in-band node (not a fault: the path a lost password takes):
 * it is `manageable` and the rotator does not know its password, so the fleet
 * rotates it through a manual clean with the real agent. The rotator runs
 * with `--allow-plain-args` (this Ironic runs without fast track, so no agent
 * certificate is pinned to seal to; the sealed path is rotate-sealed-ironic's)
 * and `--clean-timeout 300`. The node is held in maintenance (an operator's
 * hold: needs attention, nothing changed) for the first run of round 1 and
 * released once that run is killed, so its clean runs whole in the restarted
 * run, whatever moment the kill lands at; round 2 finds its password in the
 * store and rotates it out-of-band.
 */
import { existsSync, mkdirSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { FleetNodeResult } from '../../conductor/fleet.js';
import type { OobRecord } from '../../conductor/fleet-oob.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import { FleetLab, type LabNode, type RunResult } from './fleet-lab.js';

export type FaultKind = 'stop' | 'wrong' | 'patch' | 'locked' | 'retire' | 'inband';

export interface ScenarioOptions {
  n: number;
  concurrency?: number;
  bmcIntervalS?: number;
  stopForMs?: number;
  log?: (l: string) => void;
  /** Every rotator run's output (for the suite's leak check). */
  onRun?: (round: number, r: RunResult) => void;
}

export interface NodeCheck {
  node: string;
  fault: FaultKind | null;
  ironicUser: string;
  /** Where the lab got the password of Ironic's user. */
  source: string;
  ironicLogsIn: boolean;
  /** The user Ironic held before the round still logs in (null: it did not change). */
  previousLogsIn: boolean | null;
  ironicPower: string | null;
  pendingEntries: number;
  /** Ironic's provision state and maintenance flag before the round and after it. */
  provisionBefore: string;
  provisionState: string;
  maintenance: boolean;
}

export interface RoundReport {
  round: number;
  runs: Array<{ code: number | null; signal: string | null; wallMs: number; peakRssKiB: number; killed: boolean; resumed: boolean | null }>;
  wallMs: number;
  rotated: number;
  results: FleetNodeResult[];
  /** The per-node records the round's runs kept (with each rotation's steps). */
  records: FleetNodeResult[];
  checks: NodeCheck[];
  /** Relay-counted Ironic API calls in this round (every node, every run). */
  ironicCalls: number;
  durationsMs: number[];
  ipmiSessions: number[];
  /** Mean ms per out-of-band step over the round's rotated nodes. */
  stepMs: Record<string, number>;
  peakRssKiB: number;
  stoppedAt: Record<string, number>;
}

export interface ScenarioReport {
  n: number;
  faults: Record<string, FaultKind>;
  rounds: RoundReport[];
  /** Node → store entry ids that were pending after round 1 and current after round 2 (resumed with the same password). */
  resumedSamePassword: string[];
}

export function faultPlan(n: number): Map<number, FaultKind> {
  const kinds: FaultKind[] = ['stop', 'wrong', 'patch', 'locked', 'retire'];
  const count = Math.max(kinds.length, Math.round(n / 10));
  const plan = new Map<number, FaultKind>();
  for (let k = 0; k < count; k++) {
    // Spread over the listing order, starting early so a stop lands before the kill.
    plan.set(Math.min(n - 1, 1 + Math.floor((k * n) / count)), kinds[k % kinds.length]!);
  }
  return plan;
}

async function roundRecords(lab: FleetLab, since: number): Promise<FleetNodeResult[]> {
  if (!existsSync(lab.recordsDir)) return [];
  const out: FleetNodeResult[] = [];
  for (const f of await readdir(lab.recordsDir)) {
    if (!f.endsWith('.json') || f === 'fleet-run.json') continue;
    const r = JSON.parse(await readFile(join(lab.recordsDir, f), 'utf8')) as FleetNodeResult;
    const started = Date.parse((r.record as { startedAt?: string } | undefined)?.startedAt ?? '');
    if (started >= since) out.push(r);
  }
  return out;
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
export { pct as percentile };

export async function runScenario(lab: FleetLab, opts: ScenarioOptions): Promise<ScenarioReport> {
  const log = opts.log ?? (() => undefined);
  const plan = faultPlan(opts.n);
  const faultOf = (n: LabNode): FaultKind | null => (n.inBand ? 'inband' : plan.get(n.index) ?? null);
  const inBandNode = lab.nodes.find((n) => n.inBand);
  const report: ScenarioReport = { n: opts.n, faults: {}, rounds: [], resumedSamePassword: [] };
  for (const n of lab.nodes) if (faultOf(n)) report.faults[n.name] = faultOf(n)!;
  const args = ['--concurrency', String(opts.concurrency ?? 8), '--bmc-interval', String(opts.bmcIntervalS ?? 1),
    ...(inBandNode ? ['--allow-plain-args', '--clean-timeout', '300'] : [])];
  const store = new FileSecretStore({ path: lab.storePath });
  const stopFor = opts.stopForMs ?? 20_000;

  type Before = Map<string, { user: string; password: string; provisionState: string }>;
  const check = async (round: number, before: Before): Promise<NodeCheck[]> => {
    const out: NodeCheck[] = [];
    const one = async (n: LabNode): Promise<NodeCheck> => {
      const cred = await lab.ironicCredential(n);
      const prev = before.get(n.uuid)!;
      const hist = existsSync(lab.storePath) ? await store.history(n.uuid) : [];
      const node = await lab.ironic.node(n.uuid);
      return {
        node: n.name, fault: faultOf(n), ironicUser: cred.username, source: cred.source,
        ironicLogsIn: await lab.login(n, cred.username, cred.password),
        previousLogsIn: prev.user === cred.username ? null : await lab.login(n, prev.user, prev.password),
        ironicPower: await lab.ironicPowerWorks(n),
        pendingEntries: hist.filter((e) => e.state === 'pending').length,
        provisionBefore: prev.provisionState, provisionState: node.provision_state, maintenance: node.maintenance,
      };
    };
    for (let i = 0; i < lab.nodes.length; i += 8) out.push(...await Promise.all(lab.nodes.slice(i, i + 8).map(one)));
    log(`round ${round}: checked ${out.length} nodes`);
    return out;
  };
  const snapshot = async (): Promise<Before> => {
    const m: Before = new Map();
    for (const n of lab.nodes) {
      const c = await lab.ironicCredential(n);
      m.set(n.uuid, { user: c.username, password: c.password, provisionState: (await lab.ironic.node(n.uuid)).provision_state });
    }
    return m;
  };

  for (const round of [1, 2]) {
    const before = await snapshot();
    const since = Date.now();
    const callsBefore = [...lab.calls.values()].reduce((a, b) => a + b, 0);
    const stoppedAt: Record<string, number> = {};
    const timers: NodeJS.Timeout[] = [];
    lab.faults.refusePatch.clear();
    lab.faults.lockedReads.clear();
    if (round === 1) {
      for (const n of lab.nodes) {
        if (faultOf(n) === 'patch') lab.faults.refusePatch.add(n.uuid);
        if (faultOf(n) === 'locked') lab.faults.lockedReads.set(n.uuid, 3);
      }
    }
    const watchStops = (): void => {
      if (round !== 1) return;
      for (const n of lab.nodes) {
        if (faultOf(n) !== 'stop' || stoppedAt[n.name] !== undefined) continue;
        if (existsSync(join(lab.journalRoot, n.uuid))) {
          n.sim.pause();
          stoppedAt[n.name] = Date.now() - since;
          log(`round 1: ${n.name}'s BMC stopped (SIGSTOP) mid-change`);
          timers.push(setTimeout(() => n.sim.resume(), stopFor));
        }
      }
    };
    // The engine makes a node's journal directory right before its first write: stop the BMC
    // the moment it appears (a 20 ms poll can miss a change that takes ~100 ms).
    let watcher: FSWatcher | undefined;
    if (round === 1) {
      mkdirSync(lab.journalRoot, { recursive: true, mode: 0o700 });
      watcher = watch(lab.journalRoot, () => watchStops());
    }
    // The rotator logs `rotate NAME: store-current ok` right before it retires the previous user.
    const watchRetire = (all: string): void => {
      if (round !== 1) return;
      for (const n of lab.nodes) {
        if (faultOf(n) !== 'retire' || stoppedAt[n.name] !== undefined) continue;
        if (all.includes(`rotate ${n.name}: store-current ok`)) {
          n.sim.pause();
          stoppedAt[n.name] = Date.now() - since;
          log(`round 1: ${n.name}'s BMC stopped (SIGSTOP) as its previous user was to be retired`);
          timers.push(setTimeout(() => n.sim.resume(), stopFor));
        }
      }
    };
    const runs: RoundReport['runs'] = [];
    let last: RunResult | undefined;
    if (round === 1) {
      // Killed once 40 % are rotated (counted from its step log), then started again.
      let child: ChildProcess | undefined;
      let killed = false;
      if (inBandNode) await lab.hold(inBandNode, 'operator hold during the first run');
      const first = await lab.rotate(args, {
        onStart: (c) => (child = c),
        watch: watchStops,
        onStderr: (all) => {
          watchRetire(all);
          if (killed) return;
          const rotated = (all.match(/store-current ok/g) ?? []).length;
          if (rotated >= Math.ceil(opts.n * 0.4)) {
            killed = true;
            child?.kill('SIGKILL');
            log(`round 1: rotator killed (SIGKILL) after ${rotated} nodes were rotated`);
          }
        },
      });
      opts.onRun?.(round, first);
      runs.push({ code: first.code, signal: first.signal, wallMs: first.wallMs, peakRssKiB: first.peakRssKiB, killed, resumed: null });
      if (inBandNode) {
        await lab.hold(inBandNode, null);
        log(`round 1: ${inBandNode.name} released from maintenance for the restarted run`);
      }
      last = await lab.rotate(args, { watch: watchStops, onStderr: watchRetire });
    } else {
      last = await lab.rotate(args);
    }
    opts.onRun?.(round, last);
    let parsed: { run: { resumed: boolean }; nodes: FleetNodeResult[] } | undefined;
    try {
      parsed = JSON.parse(last.stdout) as typeof parsed;
    } catch {
      throw new Error(`round ${round}: the rotator printed no JSON (exit ${last.code}): ${last.stderr.slice(-3000)}`);
    }
    runs.push({ code: last.code, signal: last.signal, wallMs: last.wallMs, peakRssKiB: last.peakRssKiB, killed: false, resumed: parsed!.run.resumed });
    watcher?.close();
    for (const t of timers) clearTimeout(t);
    for (const n of lab.nodes) n.sim.resume();
    const wallMs = Date.now() - since;
    const records = await roundRecords(lab, since);
    const rotatedAll = records.filter((r) => r.outcome === 'rotated');
    // The figures are the out-of-band path's (a clean's reboot would swamp them).
    const rotatedRecs = rotatedAll.filter((r) => r.path === 'out-of-band');
    const stepSum: Record<string, { ms: number; k: number }> = {};
    for (const r of rotatedRecs) {
      const rec = r.record as OobRecord | undefined;
      if (!rec?.steps) continue;
      let prevT = Date.parse(rec.startedAt);
      for (const s of rec.steps) {
        const t = Date.parse(s.at);
        const e = (stepSum[s.step] ??= { ms: 0, k: 0 });
        e.ms += t - prevT;
        e.k++;
        prevT = t;
      }
    }
    const checks = await check(round, before);
    report.rounds.push({
      round, runs, wallMs, rotated: rotatedAll.length, results: parsed!.nodes, records, checks,
      ironicCalls: [...lab.calls.values()].reduce((a, b) => a + b, 0) - callsBefore,
      durationsMs: rotatedRecs.map((r) => r.durationMs), ipmiSessions: rotatedRecs.map((r) => r.ipmiSessions),
      stepMs: Object.fromEntries(Object.entries(stepSum).map(([k, v]) => [k, Math.round(v.ms / v.k)])),
      peakRssKiB: Math.max(...runs.map((r) => r.peakRssKiB)), stoppedAt,
    });
    if (round === 1) {
      for (const n of lab.nodes) {
        const p = (await store.history(n.uuid)).find((e) => e.state === 'pending');
        if (p) report.resumedSamePassword.push(`${n.name}:${p.id}`);
      }
    }
  }
  // Pending after round 1 → the same entry current after round 2.
  const confirmed: string[] = [];
  for (const s of report.resumedSamePassword) {
    const [name, id] = s.split(':') as [string, string];
    const n = lab.nodes.find((x) => x.name === name)!;
    const e = (await store.history(n.uuid)).find((x) => x.id === id);
    if (e?.state === 'current' || e?.state === 'superseded') confirmed.push(s);
  }
  report.resumedSamePassword = confirmed;
  return report;
}
