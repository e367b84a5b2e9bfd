/**
 * The agent's logger: one JSON object per line when the stream is not a
 * terminal, a short text format on a terminal (`--log-format json|text`), with
 * journald's priority prefixes when the stream is the journal. The line format
 * is service/log-line.ts, shared with the conductor side (conductor/log.ts);
 * no logging library: a line is a record, formatted, redacted, written.
 * Every module takes a child logger (`logger.child({ module: 'api' })`).
 *
 * Redaction is the last step before a line is written: every value
 * registered with {@link SecretRedactor} (BMC passwords, the agent token) and
 * anything that looks like `agent_token=…` or `"password":"…"` is masked in the
 * final text, whatever code path produced the line. It is a last line of
 * defence; callers still never pass secrets to the logger on purpose.
 *
 * The last lines written are also kept in memory (already redacted) so that
 * `log.collect_system_logs` can hand them to the conductor after a failure.
 * With `buffered`, the lines of one event-loop turn reach the stream in one
 * write instead of one write per line (the request log under load), flushed
 * after the turn and at exit.
 */
import { createRequire } from 'node:module';
import { decorateLine, plainLine, resolveLineStyle, streamFd, type LineRecord, type LineStyle, type LogFormatChoice } from '../service/log-line.js';

/** The logging surface every module codes against. */
export interface Log {
  error(message: string, meta?: object): unknown;
  warn(message: string, meta?: object): unknown;
  info(message: string, meta?: object): unknown;
  debug(message: string, meta?: object): unknown;
  child(meta: object): Log;
  isDebugEnabled?(): boolean;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const MASK = '***';

/**
 * Known secret values, masked in every log line, whatever their length: the
 * engine accepts 1-20 byte passwords (IPMI v2.0 §22.30), and a short one left
 * unmasked would be a password in the journal. A very short secret masks its
 * characters in unrelated text too; that costs readability, never a secret.
 */
export class SecretRedactor {
  private readonly values = new Set<string>();
  private pattern: RegExp | null = null;

  register(value: string | undefined | null): void {
    if (!value || this.values.has(value)) return;
    this.values.add(value);
    this.pattern = null;
  }

  unregister(value: string): void {
    if (this.values.delete(value)) this.pattern = null;
  }

  get size(): number {
    return this.values.size;
  }

  /** Masks registered values and secret-shaped fields in `text`. */
  redact(text: string): string {
    let out = text;
    if (this.values.size > 0) {
      // Longest first, so a secret that contains another is masked whole.
      this.pattern ??= new RegExp([...this.values].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
      out = out.replace(this.pattern, MASK);
    }
    return redactShapes(out);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// `agent_token=...` in a URL or query; `"password": "..."`, `"agent_token":"..."`,
// `"rescue_password"`, `"ipmi_password"` in JSON text (escaped quotes included).
const QUERY_TOKEN = /(agent_token=)[^&\s"'#]+/gi;
const JSON_SECRET = /((?:\\?")(?:[a-z_]*password|agent_token|token|secret)(?:\\?")\s*:\s*\\?")((?:[^"\\]|\\.)*?)(\\?")/gi;

/** Masks secret-shaped substrings (no registry needed). Exported for request paths and tests. */
export function redactShapes(text: string): string {
  if (text.indexOf('agent_token') === -1 && !/password|token|secret/i.test(text)) return text;
  return text.replace(QUERY_TOKEN, `$1${MASK}`).replace(JSON_SECRET, (_m, pre: string, value: string, post: string) =>
    value === MASK || value === '******' ? `${pre}${value}${post}` : `${pre}${MASK}${post}`);
}

/**
 * The last N written lines, kept for log.collect_system_logs. A circular
 * buffer: every request writes a line, and dropping the oldest of 2,000 lines
 * by shifting the array took half of a request-log line's CPU time.
 */
export class LogRing {
  private readonly lines: string[] = [];
  /** Where the next line goes once the ring is full (it is also the oldest line). */
  private next = 0;
  constructor(private readonly capacity = 2000) {}
  push(line: string): void {
    if (this.lines.length < this.capacity) {
      this.lines.push(line);
      return;
    }
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.capacity;
  }
  text(): string {
    if (!this.lines.length) return '';
    const ordered = this.next === 0 ? this.lines : [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)];
    return ordered.join('\n') + '\n';
  }
}

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Where lines go (default process.stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force the format ('human' is 'text'); default (auto): text on a TTY, JSON otherwise (service/log-line.ts). */
  format?: LogFormatChoice | 'human';
  /** Environment for the journal check (JOURNAL_STREAM) and NO_COLOR; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Force the journald priority prefixes on or off; default: on when `stream` is the journal stream. */
  journald?: boolean;
  redactor?: SecretRedactor;
  ring?: LogRing;
  /** Write the lines of one event-loop turn to the stream in one write (flushed after the turn and at exit). */
  buffered?: boolean;
}

/** What a sink needs to write a line the way every line of this program is written. */
export interface LineSinkContext {
  level: LogLevel;
  style: LineStyle;
  redactor: SecretRedactor;
  ring: LogRing;
  out: NodeJS.WritableStream;
}

/** Writes one record that passed the level filter. */
export type LineSink = (level: LogLevel, rec: LineRecord) => void;
export type LineSinkFactory = (ctx: LineSinkContext) => LineSink;

/**
 * The one way a record becomes a line, whichever sink writes it: the plain
 * line redacted, remembered (the ring log.collect_system_logs hands out, so
 * already redacted), then decorated for the stream (journald prefix, colour).
 */
export function renderLine(ctx: LineSinkContext, level: LogLevel, rec: LineRecord): string {
  const line = ctx.redactor.redact(plainLine(rec, ctx.style));
  ctx.ring.push(line);
  return `${decorateLine(line, level, ctx.style, rec.highlight === true)}\n`;
}

/** Writes each line to the stream as it is logged. */
export const directSink: LineSinkFactory = (ctx) => (level, rec) => {
  ctx.out.write(renderLine(ctx, level, rec));
};

export interface AgentLogger {
  log: Log;
  redactor: SecretRedactor;
  ring: LogRing;
  /**
   * Writes the lines from now on through another sink, rendering them the
   * same way. The daemon starts on the direct sink and moves to winston's when
   * it loads the rest of itself, just after the API answers (startup.ts): so
   * winston's ~30 ms of loading is not between exec and the first answer.
   */
  useSink(factory: LineSinkFactory): void;
}

const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A Log with its own meta (a child's), writing through `emit`; children merge their meta over the parent's. */
class LineLog implements Log {
  constructor(private readonly emit: (level: LogLevel, message: string, meta: object) => void, private readonly meta: object, private readonly debugOn = false) {}

  /** service/logger.ts asks before building a debug line's meta. */
  isDebugEnabled(): boolean {
    return this.debugOn;
  }

  private write(level: LogLevel, message: string, meta: object | undefined): void {
    // An Error as meta is its message (own properties of an Error are not what a reader needs).
    const own = meta instanceof Error ? { error: meta.message } : meta;
    this.emit(level, message, own ? { ...this.meta, ...own } : this.meta);
  }

  error(message: string, meta?: object): void {
    this.write('error', message, meta);
  }
  warn(message: string, meta?: object): void {
    this.write('warn', message, meta);
  }
  info(message: string, meta?: object): void {
    this.write('info', message, meta);
  }
  debug(message: string, meta?: object): void {
    this.write('debug', message, meta);
  }
  child(meta: object): Log {
    return new LineLog(this.emit, { ...this.meta, ...meta }, this.debugOn);
  }
}

/** A stream that holds lines until the end of the event-loop turn: `flush()` writes them now. */
export type CoalescingWriter = NodeJS.WritableStream & { flush(): void };

let streamModule: typeof import('node:stream') | undefined;
let Coalescing: (new (target: NodeJS.WritableStream) => CoalescingWriter) | undefined;

/**
 * Collects the lines written during one event-loop turn and hands them to
 * `target` in one write after the turn (setImmediate), and synchronously at
 * process exit, so a burst of request-log lines costs one write. Only the
 * daemon buffers, so node:stream is required here, at its first use: a
 * one-shot command never loads Node's stream classes (agent/stdio.ts).
 */
export function coalescingWriter(target: NodeJS.WritableStream): CoalescingWriter {
  if (!Coalescing) {
    streamModule ??= createRequire(import.meta.url)('node:stream') as typeof import('node:stream');
    Coalescing = class extends streamModule.Writable {
      private parts: string[] = [];
      private scheduled = false;
      private readonly onExit = (): void => this.flush();

      constructor(private readonly target: NodeJS.WritableStream) {
        super({ decodeStrings: false });
      }

      override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
        this.parts.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
        if (!this.scheduled) {
          this.scheduled = true;
          // Registered only while lines wait, so many writers never pile up exit listeners.
          process.once('exit', this.onExit);
          setImmediate(() => this.flush());
        }
        cb();
      }

      /** Writes what is pending now. */
      flush(): void {
        if (!this.scheduled) return;
        this.scheduled = false;
        process.off('exit', this.onExit);
        const text = this.parts.join('');
        this.parts = [];
        if (text) this.target.write(text);
      }

      override _final(cb: (err?: Error | null) => void): void {
        this.flush();
        cb();
      }
    };
  }
  return new Coalescing(target);
}

export function createLogger(opts: CreateLoggerOptions = {}): AgentLogger {
  const stream = opts.stream ?? process.stdout;
  const redactor = opts.redactor ?? new SecretRedactor();
  const ring = opts.ring ?? new LogRing();
  const style = resolveLineStyle({
    requested: opts.format, isTTY: stream.isTTY === true, env: opts.env ?? process.env,
    fd: streamFd(stream),
    ...(opts.journald !== undefined ? { journald: opts.journald } : {}),
  });
  const out: NodeJS.WritableStream = opts.buffered ? coalescingWriter(stream) : stream;
  const level = opts.level ?? 'info';
  const threshold = RANK[level];
  const ctx: LineSinkContext = { level, style, redactor, ring, out };
  // Lines start on the direct sink; the daemon moves them to winston's with useSink.
  let sink = directSink(ctx);
  const emit = (lv: LogLevel, message: string, meta: object): void => {
    // Filtered before anything is built: a change makes ~90 debug-level IPMI
    // exchanges, and formatting lines nobody keeps was measurable in the step.
    if (RANK[lv] > threshold) return;
    sink(lv, { level: lv, message, ...meta, timestamp: new Date().toISOString() } as LineRecord);
  };
  return { log: new LineLog(emit, {}, threshold >= RANK.debug), redactor, ring, useSink: (factory) => { sink = factory(ctx); } };
}

/** A logger that drops everything (for code paths that need one but have nothing to say). */
export const silentLog: Log = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLog,
};
