/**
 * Small helpers shared by the benchmarks: sample statistics, the machine
 * description, and the markdown + JSON report under bench/results/.
 */
import { cpus, release, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Summary { n: number; median: number; min: number; max: number; p99: number; mean: number }

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return {
    n: s.length,
    median: s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2,
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    p99: at(0.99),
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    cores: c.length,
    cpu: c[0]?.model ?? 'unknown',
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** One row of a side-by-side table: ours vs the peer, and the ratio peer/ours (> 1 means we are faster/smaller). */
export interface Row {
  section: string;
  what: string;
  ours: string;
  oursValue: number;
  peer: string;
  peerValue: number;
  unit: string;
  /** 'lower' if a smaller value is better (time, memory), 'higher' for rates. */
  better: 'lower' | 'higher';
  note?: string;
}

export function ratio(r: Row): number {
  return r.better === 'lower' ? r.peerValue / r.oursValue : r.oursValue / r.peerValue;
}

const fmt = (v: number): string => (!Number.isFinite(v) ? '—' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** "**4.2×** less" when ours is ahead; "peer ahead: **1.5×** more" when it is not (a ratio below 1 reads badly). */
function ratioText(r: Row): string {
  const q = ratio(r);
  if (!Number.isFinite(q)) return '—';
  if (q >= 1) return `**${fmt(q)}×** ${r.better === 'lower' ? 'less' : 'more'}`;
  return `peer ahead: ours **${fmt(1 / q)}×** ${r.better === 'lower' ? 'more' : 'less'}`;
}

export function markdownTable(rows: Row[]): string {
  const head = '| section | measure | ours | value | peer | value | unit | ratio (ours vs peer) |\n|---|---|---|---:|---|---:|---|---:|';
  const lines = rows.map((r) => `| ${r.section} | ${r.what}${r.note ? ` (${r.note})` : ''} | ${r.ours} | ${fmt(r.oursValue)} | ${r.peer} | ${fmt(r.peerValue)} | ${r.unit} | ${ratioText(r)} |`);
  return [head, ...lines].join('\n');
}

export function writeReport(name: string, rows: Row[], raw: unknown, extra: Record<string, unknown> = {}): { md: string; json: string } {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const m = machine();
  const header = `Machine: ${m.cores} cores, ${m.cpu}, kernel ${m.kernel}, ${m.memoryGiB} GiB, Node ${m.node}. Date: ${new Date().toISOString()}.`;
  const notes = Array.isArray(extra.notes) ? (extra.notes as string[]).map((n) => `- ${n}`).join('\n') : '';
  const md = `# ${name}\n\n${header}\n\n${markdownTable(rows)}\n${notes ? `\n${notes}\n` : ''}`;
  const mdPath = join(dir, `${name}.md`);
  const jsonPath = join(dir, `${name}.json`);
  writeFileSync(mdPath, md);
  writeFileSync(jsonPath, JSON.stringify({ name, machine: m, date: new Date().toISOString(), rows: rows.map((r) => ({ ...r, ratio: ratio(r) })), raw, ...extra }, null, 2));
  return { md: mdPath, json: jsonPath };
}
