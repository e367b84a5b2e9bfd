/**
 * A backend that drives `ipmitool … shell` through a pseudo-terminal: each
 * request is typed as a `raw 0xNN 0xNN …` line and the answer is parsed from
 * what ipmitool prints. Request bytes (a Set User Password carries the
 * password) therefore travel only through the pty, never through any
 * process's argument list, and the lanplus password only through the child's
 * environment (`-E` reads IPMI_PASSWORD).
 *
 * ipmitool's `raw` prints the response data without its completion code on
 * success (hex, 16 bytes a line) and one `Unable to send RAW command (…
 * rsp=0xNN): text` line on failure; it has no per-request LUN, so LUN 0 only.
 * ipmitool's shell reads lines through readline, which echoes what is typed;
 * the echo is skipped when parsing and never logged or put in an error.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';
import pty from 'node-pty';
import { BaseTransport } from './base-transport.js';
import { IpmiRequestError, IpmiTimeoutError, IpmiTransportError } from './errors.js';
import { KCS_LIMITS, type IpmiRequest, type IpmiResponse, type NormalizedRequest, type SendOptions, type TransportLimits } from './transport.js';

/** The subset of node-pty this backend uses; injectable for tests. */
export interface PtyProcess {
  readonly pid: number;
  write(data: string): void;
  kill(signal?: string): void;
  onData(listener: (data: string) => void): { dispose(): void };
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): { dispose(): void };
}
export type PtySpawn = (file: string, args: string[], options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string> }) => PtyProcess;

export interface IpmitoolOptions {
  /** Program to run; a bare name is looked up in PATH. Default `ipmitool`. */
  ipmitoolPath?: string;
  /** Interface arguments before `shell`. Default `['-I', 'open']` (/dev/ipmi0). */
  args?: string[];
  /** Extra environment for ipmitool, e.g. `{ IPMI_PASSWORD }` with `-E` in args. */
  env?: Record<string, string>;
  /** Bound on starting the shell (lanplus logs in first). Default 10000 ms. */
  startTimeoutMs?: number;
  limits?: TransportLimits;
  /**
   * Restart the shell before a request when it has been idle this long. A LAN
   * session expires on the BMC when idle (ipmi_sim: after about 30-60 s) and
   * ipmitool's shell does not log in again: every later request then fails
   * after ipmitool's own 10 s wait. Default 20000 ms for `-I lan`/`-I lanplus`,
   * never for other interfaces (the system interface has no sessions).
   */
  sessionIdleRestartMs?: number;
  spawnPty?: PtySpawn;
}

export const IPMITOOL_PROMPT = 'ipmitool> ';
const OUTPUT_LIMIT = 64 * 1024;

const STRERROR_CODES: Record<string, string> = {
  'No such file or directory': 'ENOENT',
  'Permission denied': 'EACCES',
  'Device or resource busy': 'EBUSY',
  'No such device': 'ENODEV',
  'No such device or address': 'ENXIO',
  'Operation not permitted': 'EPERM',
};

/** Finds the program like execvp would, so a missing ipmitool is ENOENT before anything is spawned. */
export function resolveProgram(file: string, pathEnv = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string {
  const candidates = file.includes('/') ? [file] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, file));
  let denied: string | undefined;
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') denied = c;
    }
  }
  if (denied) throw new IpmiTransportError('ipmitool', 'EACCES', `${denied} is not executable`, { syscall: 'access' });
  throw new IpmiTransportError('ipmitool', 'ENOENT',
    file.includes('/') ? `${file} not found (install the ipmitool package)` : `${file} not found in PATH (install the ipmitool package)`, { syscall: 'access' });
}

/** The line typed for a request. Not logged: it may carry a password. */
export function rawLine(req: Pick<NormalizedRequest, 'netFn' | 'cmd' | 'data'>): string {
  const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;
  return ['raw', hex(req.netFn), hex(req.cmd), ...Array.from(req.data, hex)].join(' ');
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;
const RAW_FAILED = /Unable to send RAW command \(channel=0x[0-9a-f]+ netfn=0x([0-9a-f]+) lun=0x[0-9a-f]+ cmd=0x([0-9a-f]+)(?: rsp=0x([0-9a-f]+))?\)/i;
const HEX_LINE = /^(?:\s*[0-9a-f]{2})+\s*$/i;

export type RawOutcome =
  | { kind: 'response'; completionCode: number; data: Uint8Array }
  | { kind: 'no-response' }
  | { kind: 'unparsed'; text: string };

/**
 * Parses what ipmitool printed for one `raw` line, from after the typed line
 * to before the next prompt. Lines that start with the `raw` command (readline's
 * echo) are skipped; unparsed text never contains them.
 */
export function parseRawOutput(output: string): RawOutcome {
  const lines = output.replace(ANSI, '').split(/\r?\n|\r/).map((l) => l.replace(IPMITOOL_PROMPT, ''));
  const kept = lines.filter((l) => !/^\s*raw\s/i.test(l) && l.trim() !== '');
  for (const l of kept) {
    const m = RAW_FAILED.exec(l);
    if (m) return m[3] === undefined ? { kind: 'no-response' } : { kind: 'response', completionCode: parseInt(m[3], 16), data: new Uint8Array(0) };
  }
  const bytes: number[] = [];
  const other: string[] = [];
  for (const l of kept) {
    if (HEX_LINE.test(l)) bytes.push(...l.trim().split(/\s+/).map((h) => parseInt(h, 16)));
    else other.push(l.trim());
  }
  if (other.length) return { kind: 'unparsed', text: other.join(' | ').slice(0, 300) };
  return { kind: 'response', completionCode: 0, data: Uint8Array.from(bytes) };
}

/** Maps what ipmitool printed before exiting (no request typed yet) to an error. */
export function startupError(output: string, args: readonly string[]): IpmiTransportError {
  const text = output.replace(ANSI, '').replace(/\r/g, '');
  const dev = /Could not open device at (\S+)[^:]*: ([^\n]+)/.exec(text);
  if (dev) {
    const reason = dev[2]!.trim();
    const code = STRERROR_CODES[reason] ?? 'EIO';
    return new IpmiTransportError('ipmitool', code, `ipmitool cannot open the IPMI device ${dev[1]}: ${reason}`, { syscall: 'open' });
  }
  if (/Unable to establish (IPMI v2 \/ RMCP\+|LAN) session/.test(text)) {
    return new IpmiTransportError('ipmitool', 'EACCES', 'ipmitool could not open a LAN session: the user or password is wrong, or no BMC answers at that address');
  }
  const firstLines = text.split('\n').filter((l) => l.trim() && !/^\s*raw\s/i.test(l)).slice(0, 3).join(' | ').slice(0, 300);
  const iface = args[args.indexOf('-I') + 1] ?? 'default';
  return new IpmiTransportError('ipmitool', 'EIO', `ipmitool shell (interface ${iface}) exited: ${firstLines || 'no output'}`);
}

interface Waiter {
  /** Called after every chunk; returns true once it has settled. */
  check: () => boolean;
  onExit: (exitCode: number, signal: number | undefined) => void;
}

export class IpmitoolTransport extends BaseTransport {
  readonly kind = 'ipmitool' as const;
  readonly description: string;
  readonly #file: string;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #startTimeoutMs: number;
  readonly #spawn: PtySpawn;
  #term: PtyProcess | undefined;
  #out = '';
  #waiter: Waiter | undefined;
  #starts = 0;
  #lastUsed = 0;
  readonly #idleRestartMs: number;

  constructor(opts: IpmitoolOptions = {}) {
    super(opts.limits ?? KCS_LIMITS);
    this.#file = opts.ipmitoolPath ?? 'ipmitool';
    this.#args = opts.args ?? ['-I', 'open'];
    if (this.#args.includes('-P')) {
      throw new IpmiTransportError('ipmitool', 'EINVAL', 'pass the password with -E and IPMI_PASSWORD in env, not -P: process arguments are visible to every user');
    }
    this.#env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C',
      LC_ALL: 'C',
      TERM: 'dumb',
      // A user's ~/.inputrc could change how readline echoes and break parsing.
      INPUTRC: '/dev/null',
      ...opts.env,
    };
    this.#startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    this.#spawn = opts.spawnPty ?? (pty.spawn as unknown as PtySpawn);
    const iface = this.#args[this.#args.indexOf('-I') + 1];
    this.#idleRestartMs = opts.sessionIdleRestartMs ?? (this.#args.includes('-I') && (iface === 'lan' || iface === 'lanplus') ? 20_000 : Infinity);
    this.description = `ipmitool ${this.#args.join(' ')} shell (pty)`;
  }

  /** How many times the shell was (re)started. */
  get shellStarts(): number {
    return this.#starts;
  }

  /** PID of the running ipmitool shell, if any. */
  get shellPid(): number | undefined {
    return this.#term?.pid;
  }

  override send(request: IpmiRequest, options?: SendOptions): Promise<IpmiResponse> {
    const lun = request?.lun;
    if (typeof lun === 'number' && Number.isInteger(lun) && lun >= 1 && lun <= 3) {
      return Promise.reject(new IpmiRequestError('lun', 'the ipmitool backend sends LUN 0 only: ipmitool raw has no per-request LUN'));
    }
    return super.send(request, options);
  }

  /** Starts the shell and waits for its first prompt; errors (no device, failed login) surface here. */
  async start(timeoutMs = this.#startTimeoutMs): Promise<void> {
    if (this.#term) return;
    const file = resolveProgram(this.#file, this.#env.PATH);
    let term: PtyProcess;
    try {
      term = this.#spawn(file, [...this.#args, 'shell'], { name: 'dumb', cols: 1024, rows: 24, cwd: '/', env: this.#env });
    } catch (err) {
      throw new IpmiTransportError(this.kind, 'ENOEXEC', `cannot start ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#term = term;
    this.#starts++;
    this.#out = '';
    term.onData((d) => {
      if (this.#term !== term) return;
      this.#out = (this.#out + d).slice(-OUTPUT_LIMIT);
      this.#waiter?.check();
    });
    term.onExit(({ exitCode, signal }) => {
      if (this.#term !== term) return;
      this.#term = undefined;
      this.#waiter?.onExit(exitCode, signal);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        this.#kill();
        reject(new IpmiTransportError(this.kind, 'ETIMEDOUT', `ipmitool shell gave no prompt within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        check: () => {
          if (!this.#out.endsWith(IPMITOOL_PROMPT)) return false;
          clearTimeout(timer);
          this.#waiter = undefined;
          this.#out = '';
          this.#lastUsed = performance.now();
          resolve();
          return true;
        },
        onExit: () => {
          clearTimeout(timer);
          this.#waiter = undefined;
          reject(startupError(this.#out, this.#args));
        },
      };
      this.#waiter.check();
    });
  }

  #kill(): void {
    const term = this.#term;
    this.#term = undefined;
    if (!term) return;
    try {
      term.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  protected async exchange(req: NormalizedRequest, timeoutMs: number): Promise<IpmiResponse> {
    const started = performance.now();
    if (this.#term && started - this.#lastUsed > this.#idleRestartMs) this.#kill();
    if (!this.#term) await this.start(Math.min(this.#startTimeoutMs, timeoutMs));
    const term = this.#term!;
    const remaining = Math.max(1, timeoutMs - (performance.now() - started));
    let line: string | undefined = rawLine(req);
    req.data.fill(0);
    this.#out = '';
    return new Promise<IpmiResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        // The shell may still answer later; a fresh shell for the next request cannot mix that answer up.
        this.#kill();
        reject(new IpmiTimeoutError(req.netFn, req.cmd, timeoutMs, this.kind));
      }, remaining);
      const done = (fn: () => void): true => {
        clearTimeout(timer);
        this.#waiter = undefined;
        this.#out = '';
        this.#lastUsed = performance.now();
        fn();
        return true;
      };
      this.#waiter = {
        check: () => {
          if (!this.#out.endsWith(IPMITOOL_PROMPT)) return false;
          const outcome = parseRawOutput(this.#out.slice(0, -IPMITOOL_PROMPT.length));
          if (outcome.kind === 'response') {
            const max = this.limits.maxResponseData;
            const rsp: IpmiResponse = outcome.data.length > max
              ? { completionCode: outcome.completionCode, data: outcome.data.slice(0, max), truncated: true }
              : { completionCode: outcome.completionCode, data: outcome.data };
            return done(() => resolve(rsp));
          }
          if (outcome.kind === 'no-response') {
            // A LAN session may have died under the shell; the next request gets a fresh one.
            this.#kill();
            return done(() => reject(new IpmiTransportError(this.kind, 'ETIMEDOUT', `ipmitool got no response to netFn 0x${req.netFn.toString(16)} cmd 0x${req.cmd.toString(16)} (it may or may not have been executed)`)));
          }
          return done(() => reject(new IpmiTransportError(this.kind, 'EPROTO', `unexpected ipmitool output: ${outcome.text}`)));
        },
        onExit: (exitCode, signal) => {
          done(() => reject(new IpmiTransportError(this.kind, 'EPIPE',
            `ipmitool shell exited (code ${exitCode}${signal ? `, signal ${signal}` : ''}) while netFn 0x${req.netFn.toString(16)} cmd 0x${req.cmd.toString(16)} was outstanding`)));
        },
      };
      term.write(`${line}\r`);
      line = undefined;
    });
  }

  protected async shutdown(): Promise<void> {
    const term = this.#term;
    if (!term) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#kill();
        resolve();
      }, 1000);
      this.#waiter = {
        check: () => false,
        onExit: () => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve();
        },
      };
      term.write('exit\r');
    });
  }
}

/** Starts the ipmitool shell, so a missing binary, device or login fails here rather than at the first request. */
export async function openIpmitoolTransport(opts: IpmitoolOptions = {}): Promise<IpmitoolTransport> {
  const t = new IpmitoolTransport(opts);
  await t.start();
  return t;
}
