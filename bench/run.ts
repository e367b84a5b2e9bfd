/**
 * `npm run bench`: runs every benchmark and prints one side-by-side table
 * (also written as markdown and JSON under bench/results/). Not part of the
 * test suite; no thresholds. `--quick` for a short smoke run.
 *
 * The run goes to bench/results/last-run.{md,json} (not tracked); only
 * `--record` replaces the tracked bench/results/latest.{md,json}, so that a
 * run to look at a figure never leaves the checkout modified.
 * `npm run bench -- SECTION...` runs only the named sections (startup, traffic,
 * credentialChange, credentialChangeGuest, daemon, transport, fleet); `fleet`
 * alone is the fleet rotation benchmark (bench/fleet.ts; INBAND_BENCH_FLEET_N,
 * default 100). `--help` lists them.
 *
 * Environment: INBAND_BENCH_IPA_CMD, a command that starts ironic-python-agent
 * standalone on 127.0.0.1:{port} (see daemon.ts); without it IPA's recorded
 * figures stand in, labelled as such.
 */
import { benchTransport } from './transport.js';
import { benchTraffic } from './traffic.js';
import { benchDaemon } from './daemon.js';
import { benchCredentialChangeHost, benchCredentialChangeGuest } from './credential-change.js';
import { benchStartup } from './startup.js';
import { markdownTable, writeReport, machine, type Row } from './lib.js';

const SECTIONS = ['startup', 'traffic', 'credentialChange', 'credentialChangeGuest', 'daemon', 'transport', 'fleet'] as const;
type SectionName = (typeof SECTIONS)[number];
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: npm run bench -- [--quick] [--record] [SECTION...]\n\nSections (default: all; fleet only without --quick): ${SECTIONS.join(', ')}.\n` +
    'The table goes to bench/results/last-run.{md,json} (untracked); --record writes the tracked latest.{md,json} instead.');
  process.exit(0);
}
const quick = args.includes('--quick');
const record = args.includes('--record');
const chosen = new Set<SectionName>();
for (const a of args) {
  if (a === '--quick' || a === '--record') continue;
  if (!(SECTIONS as readonly string[]).includes(a)) {
    console.error(`bench: unknown argument ${a} (--quick, --record, --help, or a section: ${SECTIONS.join(', ')})`);
    process.exit(2);
  }
  chosen.add(a as SectionName);
}
const wanted = (name: SectionName): boolean => (chosen.size ? chosen.has(name) : name !== 'fleet' || !quick);
// `npm run bench -- fleet`: the fleet rotation benchmark alone (minutes, real Ironic; bench/fleet.ts).
if (chosen.size === 1 && chosen.has('fleet')) {
  const { benchFleet } = await import('./fleet.js');
  await benchFleet({ record });
  process.exit(0);
}
if (record && chosen.size) {
  console.error('bench: --record writes the tracked table, which needs every section; run it without section names');
  process.exit(2);
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

if (wanted('startup')) await section('startup', () => benchStartup({ quick }));
if (wanted('traffic')) await section('traffic', benchTraffic);
if (wanted('credentialChange')) await section('credentialChange', () => benchCredentialChangeHost({ quick }));
const guest = wanted('credentialChangeGuest') ? await section('credentialChangeGuest', () => benchCredentialChangeGuest({ quick })) as { skipped?: string; machine?: Record<string, unknown> } | undefined : undefined;
const daemon = wanted('daemon') ? await section('daemon', () => benchDaemon({ quick })) as { ipa?: unknown; ipaError?: string } | undefined : undefined;
if (wanted('transport')) await section('transport', () => benchTransport({ quick }));
if (wanted('fleet')) {
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
if (chosen.size) notes.push(`Sections run: ${[...chosen].join(', ')} (not the whole bench).`);

const paths = writeReport(record ? 'latest' : 'last-run', rows, raw, { quick, notes });
const m = machine();
console.log(`\nMachine: ${m.cores} cores, ${m.cpu}, kernel ${m.kernel}, Node ${m.node}\n`);
console.log(markdownTable(rows));
if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
console.log(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s; written to ${paths.md} and ${paths.json}${record ? '' : '; --record updates the tracked latest.md/latest.json'})`);
