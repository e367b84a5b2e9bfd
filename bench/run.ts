/**
 * `npm run bench`: runs every benchmark and prints one side-by-side table
 * (also written as markdown and JSON under bench/results/). Not part of the
 * test suite; no thresholds. `--quick` for a short smoke run.
 *
 * The run goes to bench/results/last-run.{md,json} (not tracked); only
 * `--record` replaces the tracked bench/results/latest.{md,json}, so that a
 * run to look at a figure never leaves the checkout modified.
 * `npm run bench -- fleet` runs only the fleet rotation benchmark (bench/fleet.ts;
 * INBAND_BENCH_FLEET_N, default 100).
 *
 * Environment: INBAND_BENCH_IPA_CMD, a command that starts ironic-python-agent
 * standalone on 127.0.0.1:{port} (see daemon.ts); without it IPA's recorded
 * figures stand in, labelled as such.
 */
import { benchTransport } from './transport.js';
import { benchTraffic } from './traffic.js';
import { benchDaemon } from './daemon.js';
import { benchCredentialChangeHost, benchCredentialChangeGuest } from './credential-change.js';
import { markdownTable, writeReport, machine, type Row } from './lib.js';

const quick = process.argv.includes('--quick');
const record = process.argv.includes('--record');
for (const a of process.argv.slice(2)) {
  if (a !== '--quick' && a !== '--record' && a !== 'fleet') {
    console.error(`bench: unknown argument ${a} (--quick, --record, fleet)`);
    process.exit(2);
  }
}
// `npm run bench -- fleet`: the fleet rotation benchmark alone (minutes, real Ironic; bench/fleet.ts).
if (process.argv.includes('fleet')) {
  const { benchFleet } = await import('./fleet.js');
  await benchFleet({ record });
  process.exit(0);
}
const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const notes: string[] = [];
const t0 = Date.now();

/** One section; a failure is reported in the notes and the others still run. */
async function section(name: string, fn: () => Promise<{ rows: Row[]; raw: unknown }>): Promise<unknown> {
  const s = Date.now();
  try {
    const r = await fn();
    rows.push(...r.rows);
    raw[name] = r.raw;
    return r.raw;
  } catch (e) {
    const msg = `${name}: failed — ${(e as Error).message}`;
    console.log(msg);
    notes.push(msg);
    raw[name] = { error: (e as Error).message };
    return undefined;
  } finally {
    console.log(`${name}: ${((Date.now() - s) / 1000).toFixed(0)} s`);
  }
}

await section('traffic', benchTraffic);
await section('credentialChange', () => benchCredentialChangeHost({ quick }));
const guest = await section('credentialChangeGuest', () => benchCredentialChangeGuest({ quick })) as { skipped?: string; machine?: Record<string, unknown> } | undefined;
const daemon = await section('daemon', () => benchDaemon({ quick })) as { ipa?: unknown; ipaError?: string } | undefined;
await section('transport', () => benchTransport({ quick }));
if (!quick) {
  // Its own table (bench/results/fleet.md): N BMCs and a real Ironic, no peer to compare with.
  await section('fleet', async () => {
    const { benchFleet } = await import('./fleet.js');
    const r = await benchFleet({ record });
    return { rows: [], raw: { rounds: r.report.rounds.map(({ results: _r, checks: _c, ...rest }) => rest), faults: r.report.faults } };
  });
}

if (guest?.machine) notes.push(`Guest: qemu ${String(guest.machine.accel)}, ${String(guest.machine.cpus)} vCPU, Debian kernel ${String(guest.machine.kernel)}, ipmi_si KCS → ipmi_sim on the host; console log ${String(guest.machine.consoleLog)}.`);
else if (guest?.skipped) notes.push(`Guest rows skipped: ${guest.skipped}.`);
if (daemon) {
  notes.push(daemon.ipa ? 'IPA peer: ironic-python-agent 9.4.1 run standalone on loopback ($INBAND_BENCH_IPA_CMD), measured in this run with the same client.'
    : `IPA peer: recorded figures (not measured in this run${daemon.ipaError ? `: ${daemon.ipaError}` : '; set INBAND_BENCH_IPA_CMD to measure it'}).`);
}
notes.push('Ratios: peer/ours for times and sizes, ours/peer for rates; above 1 means ours is ahead. This machine is shared and noisy: A/B sides alternate round by round, raw samples are in the JSON report.');
if (quick) notes.push('Quick run (--quick): fewer rounds, shorter loads.');

const paths = writeReport(record ? 'latest' : 'last-run', rows, raw, { quick, notes });
const m = machine();
console.log(`\nMachine: ${m.cores} cores, ${m.cpu}, kernel ${m.kernel}, Node ${m.node}\n`);
console.log(markdownTable(rows));
if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
console.log(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s; written to ${paths.md} and ${paths.json}${record ? '' : '; --record updates the tracked latest.md/latest.json'})`);
