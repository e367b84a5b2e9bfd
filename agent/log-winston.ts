/**
 * The daemon's log pipeline: winston, carrying the records agent/logger.ts
 * keeps (the level filter runs there, before a record is built) through one
 * format, which renders the line exactly as every line of this program is
 * rendered (renderLine: redacted, remembered for log.collect_system_logs,
 * decorated with journald's prefix or colour), to a stream transport on the
 * daemon's stdout. A long-running daemon gets winston's levels and transports;
 * one-shot commands write their few lines directly (logger.ts directSink) and
 * never load it.
 */
import winston from 'winston';
import { renderLine, type LineSinkFactory, type LogLevel } from './logger.js';
import type { LineRecord } from '../service/log-line.js';

const MESSAGE = Symbol.for('message');
const LEVELS: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

export const winstonSink: LineSinkFactory = (ctx) => {
  const render = winston.format((info) => {
    (info as unknown as Record<symbol, string>)[MESSAGE] = renderLine(ctx, info.level as LogLevel, info as unknown as LineRecord);
    return info;
  });
  const logger = winston.createLogger({
    levels: LEVELS,
    level: ctx.level,
    format: render(),
    // The rendered line carries its newline; winston's Stream transport would add another.
    transports: [new winston.transports.Stream({ stream: ctx.out, eol: '' })],
  });
  return (_level, rec) => {
    logger.log(rec as unknown as winston.LogEntry);
  };
};
