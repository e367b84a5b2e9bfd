/** The logging surface service/ needs; the agent's logger (agent/logger.ts) satisfies it. Meta objects never hold secrets. */
export interface Logger {
  debug(msg: string, meta?: object): void;
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
  /**
   * Whether debug lines are written at all (winston's loggers have it). The
   * per-exchange IPMI summaries are only built when it says yes: a change makes
   * ~90 exchanges, and formatting lines nobody keeps was a measurable part of
   * the step's time.
   */
  isDebugEnabled?(): boolean;
}

const noop = (): void => undefined;

/** Discards everything; the default when no logger is injected. */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop, isDebugEnabled: () => false });
