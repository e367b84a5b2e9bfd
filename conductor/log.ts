/**
 * The conductor side's log lines, in the agent's format (service/log-line.ts):
 * JSON or text (`--log-format`, else INBAND_LOG_FORMAT, else auto: text on a
 * terminal, JSON otherwise), with journald priority prefixes when stderr is the
 * journal (JOURNAL_STREAM). The modules keep their `log(line)` callback; a
 * line is info unless the caller names a level.
 */
import { formatLine, LOG_FORMAT_CHOICES, resolveLineStyle, type LineLevel, type LogFormatChoice } from '../service/log-line.js';

/** A write callback that may say which real stream it writes to (for the terminal and journal checks). */
export type StderrWrite = ((s: string) => void) & { stream?: NodeJS.WriteStream };

export type ConductorLog = (line: string, level?: LineLevel) => void;

/** Takes `--log-format X` / `--log-format=X` out of `argv`; throws on a value that is not a format. */
export function takeLogFormat(argv: readonly string[]): { format: LogFormatChoice | undefined; rest: string[] } {
  const rest: string[] = [];
  let format: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--log-format') format = argv[++i] ?? '';
    else if (a.startsWith('--log-format=')) format = a.slice('--log-format='.length);
    else rest.push(a);
  }
  if (format !== undefined && !(LOG_FORMAT_CHOICES as readonly string[]).includes(format)) {
    throw new Error(`--log-format must be one of ${LOG_FORMAT_CHOICES.join(', ')} (got "${format}")`);
  }
  return { format: format as LogFormatChoice | undefined, rest };
}

export function conductorLog(write: StderrWrite, env: NodeJS.ProcessEnv, opts: { format?: LogFormatChoice; module?: string; journald?: boolean } = {}): ConductorLog {
  const stream = write.stream;
  const fromEnv = env.INBAND_LOG_FORMAT;
  const requested = opts.format ?? ((LOG_FORMAT_CHOICES as readonly string[]).includes(fromEnv ?? '') ? (fromEnv as LogFormatChoice) : 'auto');
  const style = resolveLineStyle({
    requested, isTTY: stream?.isTTY === true, env,
    fd: stream === process.stderr ? 2 : stream === process.stdout ? 1 : undefined,
    ...(opts.journald !== undefined ? { journald: opts.journald } : {}),
  });
  const module = opts.module ?? 'conductor';
  return (line, level = 'info') => write(`${formatLine({ level, message: line, module, timestamp: new Date().toISOString() }, style)}\n`);
}
