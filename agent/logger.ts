/**
 * The agent's logger: winston, one JSON object per line when stdout is not a
 * terminal, a short text format on a terminal (`--log-format json|text`), with
 * journald's priority prefixes when the stream is the journal. The line format
 * is service/log-line.ts, shared with the conductor side.
 * Every module takes a child logger (`logger.child({ module: 'api' })`).
 *
 * Redaction is the last format before a line is written: every value
 * registered with {@link SecretRedactor} (BMC passwords, the agent token) and
 * anything that looks like `agent_token=…` or `"password":"…"` is masked in the
 * final text, whatever code path produced the line. It is a last line of
 * defence; callers still never pass secrets to the logger on purpose.
 *
 * The last lines written are also kept in memory (already redacted) so that
 * `log.collect_system_logs` can hand them to the conductor after a failure.
 *
 * Start-up: loading winston and its formats (~35 CommonJS modules) takes
 * 25–50 ms, so the daemon creates its logger with `defer`: lines logged before
 * {@link AgentLogger.start} are queued with their time and written, in order,
 * when winston is created (serve does that right after the API listens; a
 * process exit does it too, so no line is lost). With `buffered`, the lines of
 * one event-loop turn reach the stream in one write instead of one write per
 * line (the request log under load), flushed after the turn and at exit.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import type winstonModule from 'winston';
import { decorateLine, plainLine, resolveLineStyle, type LineRecord, type LogFormatChoice } from '../service/log-line.js';

type Winston = typeof winstonModule;

/** The logging surface every module codes against (winston's Logger satisfies it). */
export interface Log {
  error(message: string, meta?: object): unknown;
  warn(message: string, meta?: object): unknown;
  info(message: string, meta?: object): unknown;
  debug(message: string, meta?: object): unknown;
  child(meta: object): Log;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const MESSAGE = Symbol.for('message');
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
  /** Create winston only on {@link AgentLogger.start} (or at exit); lines logged before are queued. */
  defer?: boolean;
  /** Write the lines of one event-loop turn to the stream in one write (flushed after the turn and at exit). */
  buffered?: boolean;
}

export interface AgentLogger {
  log: Log;
  redactor: SecretRedactor;
  ring: LogRing;
  /** Creates winston now if it was deferred and writes the queued lines; a no-op afterwards. */
  start(): void;
}

type Level = LogLevel;

/** A line logged before winston exists: replayed through the same child logger, stamped with its own time. */
interface Queued {
  from: DeferredLog;
  level: Level;
  message: string;
  meta: object | undefined;
  timestamp: string;
}

/** Owns the winston logger once created, and the queue before. */
class LoggerCore {
  private winston: winstonModule.Logger | null = null;
  private queue: Queued[] = [];
  // At exit, the queued lines go through winston and whatever that leaves in a buffer is written:
  // listeners added while 'exit' is emitted (the writer's own) are not called.
  private readonly onExit = (): void => {
    this.start();
    this.afterExit();
  };

  constructor(private readonly create: () => winstonModule.Logger, defer: boolean, private readonly afterExit: () => void = () => undefined) {
    if (defer) process.once('exit', this.onExit);
    else this.start();
  }

  get started(): boolean {
    return this.winston !== null;
  }

  root(): winstonModule.Logger {
    if (!this.winston) throw new Error('logger not started');
    return this.winston;
  }

  start(): void {
    if (this.winston) return;
    this.winston = this.create();
    process.off('exit', this.onExit);
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) {
      // The time the line was logged, not the time winston arrived (the timestamp format keeps a set one).
      const meta = q.meta instanceof Error ? q.meta : { timestamp: q.timestamp, ...q.meta };
      q.from.target()[q.level](q.message, meta);
    }
  }

  enqueue(q: Queued): void {
    this.queue.push(q);
  }
}

/** The Log every module holds: winston's child logger once winston exists, a queue before. */
class DeferredLog implements Log {
  private w: winstonModule.Logger | null = null;

  constructor(private readonly core: LoggerCore, private readonly parent: DeferredLog | null, private readonly meta: object | null) {}

  target(): winstonModule.Logger {
    // Built through winston's own child chain, so meta merges exactly as winston's children do.
    this.w ??= this.parent ? this.parent.target().child(this.meta ?? {}) : this.core.root();
    return this.w;
  }

  private write(level: Level, message: string, meta: object | undefined): void {
    if (this.w) this.w[level](message, meta);
    else if (this.core.started) this.target()[level](message, meta);
    else this.core.enqueue({ from: this, level, message, meta, timestamp: new Date().toISOString() });
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
    return new DeferredLog(this.core, this, meta);
  }
}

/**
 * Collects the lines written during one event-loop turn and hands them to
 * `target` in one write after the turn (setImmediate), and synchronously at
 * process exit, so a burst of request-log lines costs one write.
 */
export class CoalescingWriter extends Writable {
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
}

let winstonLoaded: Winston | null = null;
/** winston, loaded synchronously on first use (it is CommonJS). */
function loadWinston(): Winston {
  winstonLoaded ??= createRequire(import.meta.url)('winston') as Winston;
  return winstonLoaded;
}

export function createLogger(opts: CreateLoggerOptions = {}): AgentLogger {
  const stream = opts.stream ?? process.stdout;
  const redactor = opts.redactor ?? new SecretRedactor();
  const ring = opts.ring ?? new LogRing();
  const style = resolveLineStyle({
    requested: opts.format, isTTY: stream.isTTY === true, env: opts.env ?? process.env,
    fd: stream === process.stdout ? 1 : stream === process.stderr ? 2 : undefined,
    ...(opts.journald !== undefined ? { journald: opts.journald } : {}),
  });

  const buffer = opts.buffered ? new CoalescingWriter(stream) : null;
  const out = buffer ?? (stream as NodeJS.WritableStream as Writable);
  const create = (): winstonModule.Logger => {
    const winston = loadWinston();
    // The final step for every line: redact, remember, then decorate (journald prefix, colour) for the transport.
    const finalize = winston.format((info) => {
      const rec = info as unknown as Record<string | symbol, unknown>;
      const line = redactor.redact(String(rec[MESSAGE]));
      ring.push(line);
      rec[MESSAGE] = decorateLine(line, String(rec.level), style, rec.highlight === true);
      return info;
    });

    // One line format for the agent and the conductor side (service/log-line.ts).
    const line = winston.format.printf((info) => plainLine(info as unknown as LineRecord, style));

    return winston.createLogger({
      level: opts.level ?? 'info',
      levels: { error: 0, warn: 1, info: 2, debug: 3 },
      format: winston.format.combine(
        winston.format.timestamp(),
        winston.format.errors({ stack: false }),
        line,
        finalize(),
      ),
      transports: [new winston.transports.Stream({ stream: out })],
      exitOnError: false,
    });
  };

  const core = new LoggerCore(create, opts.defer ?? false, () => buffer?.flush());
  return { log: new DeferredLog(core, null, null), redactor, ring, start: () => core.start() };
}

/** A Writable that collects lines in memory (tests, and the CLI's quiet mode). */
export class LineCollector extends Writable {
  readonly lines: string[] = [];
  private partial = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const text = this.partial + chunk.toString();
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) if (p) this.lines.push(p);
    cb();
  }
  text(): string {
    return this.lines.join('\n') + (this.partial ? `\n${this.partial}` : '');
  }
}

/** A logger that drops everything (for code paths that need one but have nothing to say). */
export const silentLog: Log = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLog,
};
