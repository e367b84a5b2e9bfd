/**
 * The command registry, shaped like IPA's extensions: a command is
 * `<extension>.<name>`, sync (answered when done) or async (answered RUNNING,
 * finished in the background). Each command declares a JSON schema for its
 * params, compiled once on first use; params that fail it are
 * refused with 400 naming the field, before a record exists or anything runs.
 *
 * The executor enforces IPA's execution model (research: ipa.md §1.4): one
 * command at a time; a new one while the last is RUNNING is 409 "Agent is busy".
 */
import type { ErrorObject } from 'ajv';
import { lazyValidator } from '../ajv.js';
import type { Log } from '../logger.js';
import { ServiceError } from '../../service/errors.js';
import { agentBusy, ApiError, badCommandName, type CommandError, invalidParams, unknownCommand, unknownExtension } from './errors.js';
import { CommandRecord, type CommandStore } from './records.js';

export interface CommandContext {
  log: Log;
  record: CommandRecord;
}

interface CommandBase<A, R> {
  mode: 'sync' | 'async';
  /** JSON schema of `params`. */
  schema: object;
  run: (args: A, ctx: CommandContext) => Promise<R>;
  /** A secret-free note for the log line that starts the command (e.g. which step). */
  summary?: (args: A) => string;
  /** Says why params that failed the schema are refused, in the words of the contract behind it (`field: problem`); null leaves it to ajv's. */
  explain?: (params: unknown) => string | null;
}

/**
 * A command: `P` its params (as the schema admits them), `A` what `prepare`
 * makes of them (without `prepare`, `run` takes the params), `R` its result's
 * wire type (agent/api/wire.ts).
 */
export type CommandDefinition<P = Record<string, unknown>, A = P, R = unknown> =
  | (CommandBase<A, R> & {
    /** Checks beyond the schema and turns params into arguments (e.g. a password into a Secret). Throw (or reject with) {@link ParamError} to refuse. */
    prepare: (params: P, name: string) => A | Promise<A>;
  })
  | (CommandBase<P, R> & { prepare?: undefined });

/** A param problem found by `prepare`; becomes 400 naming `field`. */
export class ParamError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ParamError';
  }
}

/** A command ready to start: its log note and its run. */
interface PreparedRun {
  note: string | undefined;
  run(ctx: CommandContext): Promise<unknown>;
}

/** A registered command, its types closed over at registration. */
interface Entry {
  readonly mode: 'sync' | 'async';
  /** The schema (compiled on the command's first use, so start-up stays fast), then `prepare`; throws ApiError or what `prepare` throws. */
  prepare(params: Record<string, unknown>, name: string): Promise<PreparedRun>;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/;

export class CommandRegistry {
  private readonly extensions = new Map<string, Map<string, Entry>>();

  register<P, A, R>(name: string, def: CommandDefinition<P, A, R>): this {
    if (!NAME_RE.test(name)) throw new Error(`command name "${name}" is not <extension>.<name>`);
    const [ext, cmd] = name.split('.') as [string, string];
    let m = this.extensions.get(ext);
    if (!m) this.extensions.set(ext, (m = new Map()));
    if (m.has(cmd)) throw new Error(`command ${name} registered twice`);
    const validator = lazyValidator<P>(def.schema);
    m.set(cmd, {
      mode: def.mode,
      prepare: async (params, n) => {
        const validate = await validator();
        if (!validate(params)) throw invalidParams(n, def.explain?.(params) ?? describeAjvError(validate.errors));
        if (def.prepare === undefined) return { note: def.summary?.(params), run: (ctx) => def.run(params, ctx) };
        const args = await def.prepare(params, n);
        return { note: def.summary?.(args), run: (ctx) => def.run(args, ctx) };
      },
    });
    return this;
  }

  names(): string[] {
    return [...this.extensions].flatMap(([ext, m]) => [...m.keys()].map((c) => `${ext}.${c}`));
  }

  /** Finds a command; throws the IPA error for a malformed name, an unknown extension or command. */
  resolve(name: string): Entry {
    if (!NAME_RE.test(name)) throw badCommandName();
    const [ext, cmd] = name.split('.') as [string, string];
    const m = this.extensions.get(ext);
    if (!m) throw unknownExtension(ext);
    const e = m.get(cmd);
    if (!e) throw unknownCommand(cmd);
    return e;
  }
}

/** Renders the first ajv error as `params.field: problem`, never echoing a value. */
export function describeAjvError(errors: ErrorObject[] | null | undefined, root = 'params'): string {
  const e = errors?.[0];
  if (!e) return `${root}: invalid`;
  const path = root + e.instancePath.replace(/\/([^/]+)/g, (_m, seg: string) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}.${String(p.additionalProperty)}: unknown field`;
    case 'required':
      return `${path}.${String(p.missingProperty)}: required field missing`;
    case 'type':
      return `${path}: must be ${String(p.type)}`;
    case 'enum':
      return `${path}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${path}: ${e.message ?? 'is invalid'}`;
  }
}

export interface ExecutorOptions {
  registry: CommandRegistry;
  store: CommandStore;
  log: Log;
  /** Called when an async command ends (the conductor client forces a heartbeat). */
  onAsyncDone?: (record: CommandRecord) => void;
  /** Refuses every command (lockdown); returns the reason or null. */
  lockdown?: () => string | null;
}

export class CommandExecutor {
  constructor(private readonly opts: ExecutorOptions) {}

  /**
   * Validates and starts a command. Resolves with its record once a sync
   * command has finished, or at once (RUNNING) for an async one. Throws
   * {@link ApiError} for anything refused before it ran.
   */
  async execute(name: string, params: Record<string, unknown>): Promise<CommandRecord> {
    const locked = this.opts.lockdown?.();
    if (locked) throw new ApiError(403, `Agent is locked down and accepts no commands: ${locked}`);
    const entry = this.opts.registry.resolve(name);
    const busy = this.opts.store.running();
    if (busy) throw agentBusy(busy.name);
    let prepared: PreparedRun;
    try {
      prepared = await entry.prepare(params, name);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      if (e instanceof ParamError) throw invalidParams(name, e.message);
      throw invalidParams(name, (e as Error).message);
    }
    // Validation may have waited (ajv loads, and a schema compiles, on first use): a command
    // that started meanwhile makes this one busy, exactly as if it had arrived later.
    const started = this.opts.store.running();
    if (started) throw agentBusy(started.name);
    const record = new CommandRecord(name);
    this.opts.store.add(record);
    const log = this.opts.log;
    const note = prepared.note;
    log.info(`command ${name} started${note ? ` (${note})` : ''}`, { command_id: record.id, mode: entry.mode });
    const run = (async () => {
      try {
        const result = await prepared.run({ log, record });
        record.succeed(result);
        log.info(`command ${name} succeeded`, { command_id: record.id, ms: Date.now() - record.startedAt });
      } catch (e) {
        record.fail(toCommandError(e));
        log.warn(`command ${name} failed: ${record.error?.details ?? ''}`, { command_id: record.id, reason: record.error?.reason, ms: Date.now() - record.startedAt });
      }
      if (entry.mode === 'async') {
        try {
          this.opts.onAsyncDone?.(record);
        } catch (e) {
          log.warn(`after-command hook failed: ${(e as Error).message}`);
        }
      }
    })();
    if (entry.mode === 'sync') await run;
    return record;
  }
}

const SERVICE_STATUS: Record<string, number> = {
  BUSY: 409, INVALID_REQUEST: 400, NO_FREE_SLOT: 409, LOCKOUT_REFUSED: 409, UNSUPPORTED: 501,
  BMC_ERROR: 502, ROLLED_BACK: 500, ROLLBACK_FAILED: 500, INTERRUPTED_CHANGE: 500,
};

/** Any thrown value as IPA's serialized RESTError (`{type, code, message, details}`). */
export function toCommandError(e: unknown): CommandError {
  if (e instanceof ServiceError) {
    const se = e;
    return {
      type: 'BmcCredentialError',
      code: SERVICE_STATUS[se.code] ?? 500,
      message: 'Command execution failed',
      details: `${se.code}: ${se.message}`,
      reason: se.code,
    };
  }
  if (e instanceof CommandFailure) return { type: e.type, code: e.code, message: 'Command execution failed', details: e.message, reason: e.reason };
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: 'CommandExecutionError', code: 500, message: 'Command execution failed', details: `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`, reason: (err as { code?: unknown }).code !== undefined ? String((err as { code?: unknown }).code) : undefined };
}

/** A deliberate command failure with an IPA-style type (e.g. an unknown step). */
export class CommandFailure extends Error {
  constructor(message: string, readonly type = 'CommandExecutionError', readonly code = 500, readonly reason?: string) {
    super(message);
    this.name = 'CommandFailure';
  }
}
