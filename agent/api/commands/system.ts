/**
 * The rest of what Ironic sends an IPA ramdisk around a clean, service or
 * deploy run (research: openstack.md §1.6, ipa.md §3), answered the way
 * Ironic expects:
 *
 * - `log.collect_system_logs` (sync; sent before Ironic fails a node): a
 *   base64 tar.gz of the agent's own log lines (already redacted) and, where
 *   journalctl exists, this boot's journal passed through the same redactor.
 * - `standby.sync` (sync): flushes file-system buffers (sync(1)).
 * - `standby.power_off` (async): this agent does not power the node off
 *   itself; it fails with a clear reason and Ironic falls back to an
 *   out-of-band power off (agent.py reboot_and_finish_deploy).
 * - `system.lockdown` (sync): stop accepting commands for the life of the process.
 * - `poll.get_hardware_info` (sync): the inventory, when a collector is wired.
 */
import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { CommandFailure, type CommandRegistry } from '../registry.js';
import type { InventoryPort, LogFile } from '../ports.js';
import { tarGzBase64 } from '../tar.js';
import type { MessageResultWire, SystemLogsResultWire } from '../wire.js';

const EMPTY = { type: 'object', additionalProperties: false } as const;

export interface SystemCommandDeps {
  /** Log files for collect_system_logs, already redacted. */
  collectLogs: () => Promise<LogFile[]>;
  /** Locks the agent down (AgentTokenStore.lockdown). */
  lockdown: (reason: string) => void;
  /** Flushes file systems; default runs sync(1). */
  sync?: () => Promise<void>;
  /** Soft power-off; absent: the command fails and Ironic powers off out-of-band. */
  powerOff?: () => Promise<void>;
  inventory?: InventoryPort;
}

export function runFile(file: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

export function registerSystemCommands(registry: CommandRegistry, deps: SystemCommandDeps): void {
  registry.register('log.collect_system_logs', {
    mode: 'sync',
    // IPA accepts an optional `label`; Ironic sends {}.
    schema: { type: 'object', properties: { label: { type: ['string', 'null'] } }, additionalProperties: false },
    run: async (): Promise<SystemLogsResultWire> => {
      const files = await deps.collectLogs();
      return { system_logs: await tarGzBase64(files.map((f) => ({ name: f.name, data: f.text }))) };
    },
  });
  registry.register('standby.sync', {
    mode: 'sync',
    schema: EMPTY,
    run: async (): Promise<MessageResultWire> => {
      await (deps.sync ? deps.sync() : runFile('sync', []));
      return { result: 'sync: done' };
    },
  });
  registry.register('standby.power_off', {
    mode: 'async',
    schema: EMPTY,
    run: async (): Promise<null> => {
      if (!deps.powerOff) throw new CommandFailure('this agent does not power the node off itself; power it off out-of-band', 'CommandExecutionError', 501, 'UNSUPPORTED');
      await deps.powerOff();
      return null;
    },
  });
  registry.register('system.lockdown', {
    mode: 'sync',
    schema: EMPTY,
    run: async (): Promise<MessageResultWire> => {
      // Lock after this record is stored: the answer to this command still goes out.
      setImmediate(() => deps.lockdown('requested by the conductor (system.lockdown)'));
      return { result: 'lockdown: the agent accepts no further commands' };
    },
  });
  if (deps.inventory) {
    const inv = deps.inventory;
    registry.register('poll.get_hardware_info', { mode: 'sync', schema: EMPTY, run: () => inv.collect() });
  }
}

/** The default log collector: the agent's in-memory log lines and this boot's journal, redacted. */
export function defaultLogCollector(opts: { agentLog: () => string; redact: (s: string) => string; journal?: boolean }): () => Promise<LogFile[]> {
  return async () => {
    const files: LogFile[] = [{ name: 'inband-agent.log', text: opts.agentLog() }];
    if (opts.journal !== false) {
      try {
        const text = await runFile('journalctl', ['-b', '--no-pager', '-o', 'short-iso', '-n', '20000'], 15_000);
        files.push({ name: 'journal.log', text: opts.redact(text) });
      } catch (e) {
        files.push({ name: 'journal.unavailable', text: `journalctl: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n` });
      }
    }
    files.push({ name: 'hostname', text: `${hostname()}\n` });
    return files;
  };
}
