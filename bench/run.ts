/**
 * `npm run bench`: runs every benchmark and prints one side-by-side table
 * (also written as markdown and JSON under bench/results/). Not part of the
 * test suite; no thresholds. `--quick` for a short smoke run.
 */
import { benchTransport } from './transport.js';
import { benchTraffic } from './traffic.js';
import { benchDaemon } from './daemon.js';
import { benchCredentialChangeHost, benchCredentialChangeGuest } from './credential-change.js';
import { markdownTable, writeReport, machine, type Row } from './lib.js';

const quick = process.argv.includes('--quick');
const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const t0 = Date.now();

const traffic = await benchTraffic();
rows.push(...traffic.rows);
raw.traffic = traffic.raw;

const change = await benchCredentialChangeHost({ quick });
rows.push(...change.rows);
raw.credentialChange = change.raw;

const guest = await benchCredentialChangeGuest({ quick });
rows.push(...guest.rows);
raw.credentialChangeGuest = guest.raw;

const daemon = await benchDaemon({ quick });
rows.push(...daemon.rows);
raw.daemon = daemon.raw;

const transport = await benchTransport({ quick });
rows.push(...transport.rows);
raw.transport = transport.raw;

const paths = writeReport('latest', rows, raw, { quick });
const m = machine();
console.log(`\nMachine: ${m.cores} cores, ${m.cpu}, kernel ${m.kernel}, Node ${m.node}\n`);
console.log(markdownTable(rows));
console.log(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s; written to ${paths.md} and ${paths.json})`);
