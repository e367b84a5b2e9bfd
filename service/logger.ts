/** The logging surface service/ needs; the agent's logger (agent/logger.ts) satisfies it. Meta objects never hold secrets. */
export interface Logger {
  debug(msg: string, meta?: object): void;
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
}

const noop = (): void => undefined;

/** Discards everything; the default when no logger is injected. */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
