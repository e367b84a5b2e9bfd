/**
 * The one log line format of both programs — the agent (agent/logger.ts)
 * and the conductor side (conductor/log.ts) — without any logging library:
 *
 * - `json`: one object per line, `{"level","message",...meta,"timestamp"}`;
 * - `text`: `TIMESTAMP LEVEL [module] message {meta}`, for people;
 * - auto: text on a terminal, JSON otherwise.
 *
 * Under systemd (the stream is the journal: `JOURNAL_STREAM` names its device
 * and inode, systemd.exec(5)), every line starts with the syslog priority
 * prefix `<3>` error, `<4>` warning, `<6>` info, `<7>` debug, which journald
 * strips and stores as PRIORITY= (sd-daemon(3)), so `journalctl -p warning`
 * selects warnings and worse. Text lines then carry no timestamp: journald
 * stamps every line itself.
 *
 * On a terminal (and without NO_COLOR), text lines are coloured by level; a
 * line logged with `{ highlight: true }` (the simulated-BMC warning) stands out.
 */
import { fstatSync } from 'node:fs';

export type LineLevel = 'error' | 'warn' | 'info' | 'debug';
export type LineFormat = 'json' | 'text';

/** sd-daemon(3) priorities: LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7. */
export const JOURNALD_PRIORITY: Readonly<Record<LineLevel, number>> = Object.freeze({ error: 3, warn: 4, info: 6, debug: 7 });

export const LOG_FORMAT_CHOICES = ['auto', 'json', 'text'] as const;
export type LogFormatChoice = (typeof LOG_FORMAT_CHOICES)[number];

export interface LineStyle {
  format: LineFormat;
  /** Prefix `<N>` (the stream is the journal). */
  journald: boolean;
  /** ANSI colours (a terminal, NO_COLOR unset, text format). */
  colour: boolean;
}

/**
 * Whether file descriptor `fd` is the journal stream systemd connected
 * (`JOURNAL_STREAM=DEV:INODE`, both decimal). A child whose output was
 * redirected elsewhere inherits the variable but not the stream, so the
 * device and inode are compared, as systemd.exec(5) asks.
 */
export function isJournalStream(env: Readonly<Record<string, string | undefined>>, fd: number | undefined): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m || fd === undefined) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

export interface ResolveStyleOptions {
  requested?: LogFormatChoice | 'human';
  isTTY?: boolean;
  env?: Readonly<Record<string, string | undefined>>;
  /** The stream's file descriptor, for the journal check; or `journald` to decide it directly. */
  fd?: number;
  journald?: boolean;
}

export function resolveLineStyle(o: ResolveStyleOptions): LineStyle {
  const env = o.env ?? {};
  const req = o.requested === 'human' ? 'text' : (o.requested ?? 'auto');
  const format: LineFormat = req === 'auto' ? (o.isTTY ? 'text' : 'json') : req;
  const journald = o.journald ?? isJournalStream(env, o.fd);
  const colour = format === 'text' && !!o.isTTY && !journald && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  return { format, journald, colour };
}

export interface LineRecord {
  level: string;
  message: string;
  timestamp?: string;
  module?: string;
  [meta: string]: unknown;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return '"[unserializable]"';
  }
}

/** The line without prefix or colour (what the in-memory ring keeps). `highlight` is presentation, not content. */
export function plainLine(rec: LineRecord, style: Pick<LineStyle, 'format' | 'journald'>): string {
  const { level, message, timestamp, module, highlight: _h, ...rest } = rec;
  if (style.format === 'json') {
    return safeJson({ level, message, ...(module !== undefined ? { module } : {}), ...rest, ...(timestamp !== undefined ? { timestamp } : {}) });
  }
  const extra = Object.keys(rest).length ? ` ${safeJson(rest)}` : '';
  const stamp = timestamp !== undefined && !style.journald ? `${timestamp} ` : '';
  return `${stamp}${String(level).toUpperCase().padEnd(5)} ${module ? `[${String(module)}] ` : ''}${String(message)}${extra}`;
}

const COLOUR: Record<string, string> = { error: '\x1b[31m', warn: '\x1b[33m', debug: '\x1b[2m' };

/** Adds the journald prefix and the colours to a (redacted) plain line. */
export function decorateLine(line: string, level: string, style: LineStyle, highlight = false): string {
  let out = line;
  if (style.colour) {
    const c = highlight ? `\x1b[1m${COLOUR[level] ?? ''}` : COLOUR[level];
    if (c) out = `${c}${out}\x1b[0m`;
  }
  if (style.journald) out = `<${JOURNALD_PRIORITY[level as LineLevel] ?? 6}>${out}`;
  return out;
}

export function formatLine(rec: LineRecord, style: LineStyle): string {
  return decorateLine(plainLine(rec, style), rec.level, style, rec.highlight === true);
}

/**
 * The priority prefix for a line written straight to a stream (a CLI's error or
 * warning on stderr) when that stream is the journal; '' otherwise. Without it
 * journald files such a line at the unit's default priority (info), and
 * `journalctl -p err` would miss the failure.
 */
export function journalPrefix(env: Readonly<Record<string, string | undefined>>, stream: unknown, level: LineLevel): string {
  return isJournalStream(env, streamFd(stream)) ? `<${JOURNALD_PRIORITY[level]}>` : '';
}

/**
 * The fd behind a stream: Node's stdio streams and the CLI's fd writers
 * (agent/stdio.ts) carry one. Read from the stream, never by comparing it with
 * process.stdout or process.stderr, which would build that stream.
 */
export function streamFd(stream: unknown): number | undefined {
  const fd = (stream as { fd?: unknown } | null)?.fd;
  return typeof fd === 'number' ? fd : undefined;
}
