/**
 * Command records, shaped as IPA's CommandResult (research: ipa.md §1.2):
 * `{id, command_name, command_status, command_error, command_result}` where
 * `command_name` is the part after the dot. `command_params` is not
 * serialized (IPA stopped in 8.0.0), so params, which may hold a password,
 * never reach a record.
 *
 * The store keeps the last N records; when full it drops the oldest
 * *finished* one, so a running command is never forgotten.
 */
import { randomUUID } from 'node:crypto';
import type { CommandError } from './errors.js';

export type CommandStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CLEAN_VERSION_MISMATCH';

export interface CommandRecordJson {
  id: string;
  command_name: string;
  command_status: CommandStatus;
  command_error: CommandError | null;
  command_result: unknown;
}

export class CommandRecord {
  readonly id = randomUUID();
  status: CommandStatus = 'RUNNING';
  error: CommandError | null = null;
  result: unknown = null;
  readonly startedAt = Date.now();
  finishedAt: number | null = null;
  /** Resolves when the command is no longer RUNNING. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    /** Full name, `<extension>.<command>`. */
    readonly name: string,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get commandName(): string {
    return this.name.slice(this.name.indexOf('.') + 1);
  }

  get running(): boolean {
    return this.status === 'RUNNING';
  }

  succeed(result: unknown): void {
    this.finish('SUCCEEDED', result ?? null, null);
  }

  fail(error: CommandError, status: CommandStatus = 'FAILED'): void {
    this.finish(status, null, error);
  }

  private finish(status: CommandStatus, result: unknown, error: CommandError | null): void {
    if (!this.running) return;
    this.status = status;
    this.result = result;
    this.error = error;
    this.finishedAt = Date.now();
    this.resolveDone();
  }

  toJSON(): CommandRecordJson {
    return { id: this.id, command_name: this.commandName, command_status: this.status, command_error: this.error, command_result: this.result };
  }
}

export class CommandStore {
  private readonly records: CommandRecord[] = [];
  private readonly byId = new Map<string, CommandRecord>();
  private changes = 0;

  constructor(private readonly capacity = 100) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  add(rec: CommandRecord): void {
    this.changes++;
    this.records.push(rec);
    this.byId.set(rec.id, rec);
    while (this.records.length > this.capacity) {
      const idx = this.records.findIndex((r) => !r.running);
      if (idx < 0) break;
      const [gone] = this.records.splice(idx, 1);
      this.byId.delete(gone!.id);
    }
  }

  get(id: string): CommandRecord | undefined {
    return this.byId.get(id);
  }

  last(): CommandRecord | undefined {
    return this.records[this.records.length - 1];
  }

  /** A running command, if any (the last one: only one runs at a time). */
  running(): CommandRecord | undefined {
    const l = this.last();
    return l?.running ? l : undefined;
  }

  list(): readonly CommandRecord[] {
    return this.records;
  }

  /** Changes whenever a record is added (or, with it, dropped); a finished record itself never changes. */
  get version(): number {
    return this.changes;
  }

  get size(): number {
    return this.records.length;
  }
}
