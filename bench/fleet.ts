/**
 * Fleet rotation benchmark: N ipmi_sim BMCs on loopback (default 100, each
 * its own LAN port), the real Ironic 21.4 with N active `ipmi` nodes whose
 * power interface is ipmitool to those BMCs, the file store; `conductor
 * rotate --all` rotates the fleet twice with faults in ~10 % of the nodes
 * (test/harness/fleet-scenario.ts). Prints figures, asserts nothing.
 *
 *   npm run bench -- fleet                   this section alone
 *   INBAND_BENCH_FLEET_N=20 npm run bench -- fleet
 *   INBAND_BENCH_FLEET_CONCURRENCY=8, INBAND_BENCH_FLEET_BMC_INTERVAL=1 (s)
 *
 * Writes bench/results/last-run.fleet.{md,json} (not tracked); with --record,
 * the tracked bench/results/fleet.{md,json}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetLab } from '../test/harness/fleet-lab.js';
import { faultPlan, percentile, runScenario, type ScenarioReport } from '../test/harness/fleet-scenario.js';
import { ipmiSimAvailability } from '../test/harness/ipmi-sim.js';
import { ironicAvailability } from '../test/harness/ironic.js';
import { machine } from './lib.js';

export interface FleetBench {
  markdown: string;
  report: ScenarioReport;
  setupMs: number;
}

export async function benchFleet(opts: { n?: number; concurrency?: number; bmcIntervalS?: number; record?: boolean } = {}): Promise<FleetBench> {
  const n = opts.n ?? Number(process.env.INBAND_BENCH_FLEET_N ?? 100);
  const concurrency = opts.concurrency ?? Number(process.env.INBAND_BENCH_FLEET_CONCURRENCY ?? 8);
  const bmcIntervalS = opts.bmcIntervalS ?? Number(process.env.INBAND_BENCH_FLEET_BMC_INTERVAL ?? 1);
  for (const a of [ipmiSimAvailability(), ironicAvailability()]) if (!a.available) throw new Error(a.reason);
  const plan = faultPlan(n);
  const t0 = Date.now();
  const lab = await FleetLab.start({ n, wrongPassword: [...plan].filter(([, k]) => k === 'wrong').map(([i]) => i), log: (l) => console.log(l) });
  const setupMs = Date.now() - t0;
  try {
    const report = await runScenario(lab, { n, concurrency, bmcIntervalS, log: (l) => console.log(l) });
    const markdown = render(report, { n, concurrency, bmcIntervalS, setupMs, refused: lab.refusedPatches, locked: lab.lockedAnswers });
    const dir = join(process.cwd(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const base = opts.record ? 'fleet' : 'last-run.fleet';
    writeFileSync(join(dir, `${base}.md`), markdown);
    writeFileSync(join(dir, `${base}.json`), JSON.stringify({ machine: machine(), date: new Date().toISOString(), n, concurrency, bmcIntervalS, setupMs, report }, (k, v: unknown) => (k === 'record' ? undefined : v), 2));
    console.log(markdown);
    return { markdown, report, setupMs };
  } finally {
    await lab.stop();
  }
}

function render(rep: ScenarioReport, o: { n: number; concurrency: number; bmcIntervalS: number; setupMs: number; refused: number; locked: number }): string {
  const m = machine();
  const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  const rows = rep.rounds.map((r) => {
    const bad = r.checks.filter((c) => !c.ironicLogsIn).length;
    const prevStill = r.checks.filter((c) => c.previousLogsIn === true).length;
    const rotatedChecks = r.checks.filter((c) => c.previousLogsIn !== null);
    const powerBad = r.checks.filter((c) => c.ironicPower !== null).length;
    return `| ${r.round} | ${r.runs.map((x) => `${(x.wallMs / 1000).toFixed(0)} s${x.killed ? ' (killed)' : ''}${x.resumed ? ' (resumed)' : ''}`).join(' + ')} | ${r.rotated} | ${f1(r.rotated / (r.wallMs / 60_000))} | ${f1(percentile(r.durationsMs, 50) / 1000)} / ${f1(percentile(r.durationsMs, 99) / 1000)} s | ${f1(mean(r.ipmiSessions))} | ${f1(r.ironicCalls / o.n)} | ${Math.round(r.peakRssKiB / 1024)} MiB | ${rotatedChecks.length - prevStill}/${rotatedChecks.length} new log in, previous refused | ${o.n - bad}/${o.n} | ${o.n - powerBad}/${o.n} | ${bad} |`;
  });
  const faultsOf = (k: string): string[] => Object.entries(rep.faults).filter(([, v]) => v === k).map(([name]) => name);
  const outcome = (name: string): string => rep.rounds.map((r) => {
    const x = r.results.find((y) => y.node === name);
    const c = r.checks.find((y) => y.node === name);
    return `r${r.round}: ${x?.outcome ?? '?'}${x?.resumable ? ' (pending kept)' : ''}, Ironic → ${c?.ironicUser}`;
  }).join('; ');
  const steps = rep.rounds.map((r) => `round ${r.round}: ${Object.entries(r.stepMs).filter(([k]) => k !== 'resume-pending').map(([k, v]) => `${k} ${v} ms`).join(', ')}`).join('; ');
  return `# Fleet rotation benchmark

Machine: ${m.cores} cores, ${m.cpu}, kernel ${m.kernel}, ${m.memoryGiB} GiB, Node ${m.node}. Date: ${new Date().toISOString()}.
N = ${o.n} ipmi_sim BMCs (one process and LAN port each) and one Ironic 21.4 (sqlite, single process) on loopback; the rotator
\`conductor rotate --all --concurrency ${o.concurrency} --bmc-interval ${o.bmcIntervalS}\` as its own process; fleet set-up ${(o.setupMs / 1000).toFixed(0)} s (not counted).

| round | runs (wall) | rotated | nodes/min | p50 / p99 per node | IPMI sessions / rotated node | Ironic API calls / node | rotator peak RSS | rotated nodes | Ironic's credential logs in | Ironic power call works | lock-outs |
|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|
${rows.join('\n')}

Faults (${Object.keys(rep.faults).length} of ${o.n} nodes, plus the rotator killed with SIGKILL in round 1 once 40 % were rotated, then started again):
- BMC stopped (SIGSTOP) mid-change, continued 20 s later: ${faultsOf('stop').map((n) => `${n} (${outcome(n)})`).join('; ')}
- BMC stopped (SIGSTOP) as the previous user was to be retired, continued 20 s later: ${faultsOf('retire').map((n) => `${n} (${outcome(n)})`).join('; ') || 'none'}
- wrong current password: ${faultsOf('wrong').map((n) => `${n} (${outcome(n)})`).join('; ')}
- Ironic refuses the PATCH (round 1; ${o.refused} refused): ${faultsOf('patch').map((n) => `${n} (${outcome(n)})`).join('; ')}
- node reserved by another conductor for its first 3 reads (round 1; ${o.locked} such answers): ${faultsOf('locked').map((n) => `${n} (${outcome(n)})`).join('; ')}
- pending after round 1 and finished with the same entry in round 2: ${rep.resumedSamePassword.length ? rep.resumedSamePassword.join(', ') : 'none (the stopped BMCs were finished within round 1, by the restarted run)'}

Where a rotated node's time goes (mean per step, out-of-band; a step's time includes its wait at the per-BMC gate,
\`--bmc-interval\` after the node's previous session): ${steps}.
"nodes/min" is rotated nodes over the round's wall time (all its runs). p50/p99 are per rotated node, from its first take-up
to its outcome (back-offs included). IPMI sessions: RMCP+ logins the rotator opened for the node (the probe, the engine's
shell, the proof, the retirement's one). Ironic API calls: counted by the relay in front of Ironic, every node and run.
"Ironic power call works": the lab reads the BMC's power state over lanplus with Ironic's credential, then asks Ironic
for that same state, which its conductor answers after running \`ipmitool power status\` with driver_info.
`;
}
