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
