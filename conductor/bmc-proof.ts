/**
 * Out-of-band checks at the node's BMC over RMCP+ (lanplus), with ipmitool:
 * proving a credential (`mc info`, §20.1 Get Device ID inside a session) and
 * retiring a superseded user (`user disable`, §22.30 Set User Password op 0).
 *
 * The password reaches ipmitool only through its environment (`-E` reads
 * IPMI_PASSWORD): /proc/<pid>/cmdline is world-readable, /proc/<pid>/environ is not.
 */
import { spawn } from 'node:child_process';
import type { Secret } from '../service/secret.js';

export interface BmcEndpoint {
  host: string;
  port: number;
  /** RMCP+ cipher suite; 3 (SHA1/AES-128) skips ipmitool's cipher-suite query. */
  cipherSuite: string;
}

export interface BmcCredential {
  username: string;
  password: Secret;
}

export interface ProofResult {
  ok: boolean;
  /** ipmitool's stderr, squeezed to one line (never holds the password). */
  detail: string;
  attempts: number;
}

export interface BmcProver {
  prove(bmc: BmcEndpoint, cred: BmcCredential): Promise<ProofResult>;
  /** Disables the user named `username`, logged in as `as`. */
  /**
   * Disables the user named `username`, logged in as `as`. `transient` false:
   * waiting will not change the answer (no such user, the last administrator).
   */
  retire(bmc: BmcEndpoint, as: BmcCredential, username: string): Promise<{ ok: boolean; detail: string; userId?: number; transient?: boolean }>;
  /** Reads the chassis power state (§28.2 Get Chassis Status), a read that changes nothing. */
  powerStatus?(bmc: BmcEndpoint, cred: BmcCredential): Promise<{ ok: boolean; state?: 'power on' | 'power off'; detail: string }>;
}

export interface IpmitoolProverOptions {
  ipmitoolPath?: string;
  /** Per ipmitool run, default 20 s. */
  timeoutMs?: number;
  /** Login attempts before a proof fails (a BMC may still be busy after the node's reboot), default 3. */
  attempts?: number;
  retryDelayMs?: number;
}

/** Reads driver_info the way Ironic's ipmitool driver does (ipmi_port default 623). */
export function endpointFromDriverInfo(info: Record<string, unknown>): BmcEndpoint {
  const host = info.ipmi_address;
  if (typeof host !== 'string' || !host) throw new Error('driver_info has no ipmi_address');
  return { host, port: Number(info.ipmi_port ?? 623), cipherSuite: String(info.ipmi_cipher_suite ?? '3') };
}

export class IpmitoolProver implements BmcProver {
  constructor(private readonly opts: IpmitoolProverOptions = {}) {}

  async prove(bmc: BmcEndpoint, cred: BmcCredential): Promise<ProofResult> {
    const attempts = this.opts.attempts ?? 3;
    let last = '';
    for (let i = 1; i <= attempts; i++) {
      const r = await this.run(bmc, cred, ['mc', 'info']);
      if (r.code === 0 && /IPMI Version/.test(r.stdout)) return { ok: true, detail: 'mc info over lanplus', attempts: i };
      last = r.stderr || `exit ${r.code}`;
      if (i < attempts) await new Promise((res) => setTimeout(res, this.opts.retryDelayMs ?? 2000));
    }
    return { ok: false, detail: last, attempts };
  }

  async retire(bmc: BmcEndpoint, as: BmcCredential, username: string): Promise<{ ok: boolean; detail: string; userId?: number }> {
    // Names are global to the BMC (§22.28); the channel only shapes the access columns.
    const list = await this.run(bmc, as, ['user', 'list', '1']);
    if (list.code !== 0) return { ok: false, detail: `user list: ${list.stderr || `exit ${list.code}`}` };
    const ids = list.stdout.split('\n').map((l) => /^\s*(\d+)\s+(\S+)\s/.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[2] === username).map((m) => Number(m[1]));
    if (ids.length !== 1) return { ok: false, detail: ids.length ? `${ids.length} users are named ${username}` : `no user named ${username}` };
    const userId = ids[0] as number;
    const dis = await this.run(bmc, as, ['user', 'disable', String(userId)]);
    if (dis.code !== 0) return { ok: false, detail: `user disable ${userId}: ${dis.stderr || `exit ${dis.code}`}`, userId };
    return { ok: true, detail: `user ${userId} (${username}) disabled`, userId };
  }

  async powerStatus(bmc: BmcEndpoint, cred: BmcCredential): Promise<{ ok: boolean; state?: 'power on' | 'power off'; detail: string }> {
    const r = await this.run(bmc, cred, ['power', 'status']);
    const m = /Chassis Power is (on|off)/.exec(r.stdout);
    if (r.code !== 0 || !m) return { ok: false, detail: `power status: ${r.stderr || `exit ${r.code}`}` };
    return { ok: true, state: m[1] === 'on' ? 'power on' : 'power off', detail: `chassis power is ${m[1]}` };
  }

  private async run(bmc: BmcEndpoint, cred: BmcCredential, cmd: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await runIpmitool(lanplusArgs(bmc, cred, { packetTimeoutS: 1, packetRetries: 2 }), cmd, cred, { ipmitoolPath: this.opts.ipmitoolPath, timeoutMs: this.opts.timeoutMs ?? 20_000 });
    const extra = r.error ? ` ${r.error}` : r.signal ? ` killed by ${r.signal}` : '';
    return { code: r.code, stdout: r.stdout, stderr: (r.stderr + extra).replace(/\s+/g, ' ').trim().slice(0, 300) };
  }
}

/** ipmitool's lanplus arguments for `bmc` as `cred`; `-E`: the password comes from IPMI_PASSWORD. */
export function lanplusArgs(bmc: BmcEndpoint, cred: BmcCredential, o: { packetTimeoutS: number; packetRetries: number }): string[] {
  return ['-I', 'lanplus', '-C', bmc.cipherSuite, '-H', bmc.host, '-p', String(bmc.port), '-U', cred.username, '-E',
    '-N', String(o.packetTimeoutS), '-R', String(o.packetRetries)];
}

/**
 * Runs one ipmitool process, killed after `timeoutMs`. The password reaches it
 * only through its environment (/proc/<pid>/cmdline is world-readable,
 * /proc/<pid>/environ is not). With `keepBytes`, only the last bytes of each
 * output stream are kept.
 */
export function runIpmitool(args: readonly string[], cmd: readonly string[], cred: BmcCredential, o: { ipmitoolPath?: string | undefined; timeoutMs: number; keepBytes?: number }): Promise<{ code: number | null; stdout: string; stderr: string; error?: string; signal?: string }> {
  return new Promise((resolve) => {
    const child = spawn(o.ipmitoolPath ?? '/usr/bin/ipmitool', [...args, ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: cred.password.reveal() },
    });
    const keep = (text: string): string => (o.keepBytes !== undefined ? text.slice(-o.keepBytes) : text);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = keep(stdout + d.toString())));
    child.stderr.on('data', (d: Buffer) => (stderr = keep(stderr + d.toString())));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    let settled = false;
    const done = (r: { code: number | null; error?: string; signal?: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout, stderr });
    };
    child.once('error', (e) => done({ code: null, error: e.message }));
    child.once('close', (code, sig) => done({ code, ...(sig ? { signal: sig } : {}) }));
  });
}

/**
 * Retries a retirement while its failure may pass (the BMC busy, silent or
 * timing out: `transient` not false), with back-off doubling from `delayMs`
 * (default 2 s) up to `attempts` tries (default 3). An answer waiting will not
 * change (no such user, the last administrator) ends it at once. Returns every
 * try's result, the last one deciding.
 */
export async function retryRetirement<R extends { ok: boolean; transient?: boolean; detail: string }>(
  attempt: () => Promise<R>,
  opts: { attempts?: number; delayMs?: number; onRetry?: (failed: R, delayMs: number) => void } = {},
): Promise<{ last: R; tries: R[] }> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const tries: R[] = [];
  for (let delay = opts.delayMs ?? 2000; ; delay *= 2) {
    const r = await attempt();
    tries.push(r);
    if (r.ok || r.transient === false || tries.length >= attempts) return { last: r, tries };
    opts.onRetry?.(r, delay);
    await new Promise((res) => setTimeout(res, delay));
  }
}

/** What {@link ironicPowerCheck} needs of Ironic. */
export interface PowerCheckIronic {
  node(ident: string): Promise<{ power_state: string | null }>;
  power(ident: string, target: string): Promise<void>;
  waitForPower(ident: string, timeoutMs: number): Promise<{ power_state: string | null; last_error: string | null }>;
}

/**
 * Makes Ironic reach the BMC with its driver_info, by a call that changes
 * nothing: Ironic has no read-only power API, so the state is read from the
 * BMC itself first (lanplus `power status` as the new user) and Ironic is
 * asked to set exactly that state. Ironic's database may be stale (a node
 * powered from its console, a BMC that lost power): asking for the recorded
 * state could switch a running node off. Only a prover without
 * `powerStatus` (unit tests) falls back to the recorded state. Returns the
 * state Ironic reports afterwards; throws with Ironic's last_error.
 */
export async function ironicPowerCheck(ironic: PowerCheckIronic, prover: BmcProver, uuid: string, bmc: BmcEndpoint, cred: BmcCredential, timeoutMs: number): Promise<string | null> {
  let state = (await ironic.node(uuid)).power_state;
  if (prover.powerStatus) {
    const read = await prover.powerStatus(bmc, cred);
    if (!read.ok || !read.state) throw new Error(`could not read the BMC's power state as ${cred.username}: ${read.detail}`);
    state = read.state;
  }
  if (state !== 'power on' && state !== 'power off') throw new Error(`power state "${state}" unknown`);
  await ironic.power(uuid, state);
  const after = await ironic.waitForPower(uuid, timeoutMs);
  if (after.last_error) throw new Error(`Ironic could not reach the BMC as ${cred.username}: ${after.last_error}`);
  return after.power_state;
}
