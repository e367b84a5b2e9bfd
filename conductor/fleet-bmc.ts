/**
 * The fleet rotator's out-of-band reach to one BMC: a classified login probe
 * (does the credential Ironic holds log in, and if not, why), a lanplus
 * transport for the credential engine, a guard that keeps the engine off the
 * user the session is logged in as, and a per-BMC pacing gate.
 *
 * Passwords reach ipmitool only through its environment (`-E` reads
 * IPMI_PASSWORD): /proc/<pid>/cmdline is world-readable, /proc/<pid>/environ is
 * readable only by the process's owner and root. Nothing is written to a file.
 */
import { IpmiRequestError } from '../ipmi-kcs/errors.js';
import { IpmitoolTransport } from '../ipmi-kcs/ipmitool-pty.js';
import type { IpmiRequest, IpmiResponse, SendOptions, Transport, TransportStats } from '../ipmi-kcs/transport.js';
import { BmcClient } from '../service/bmc-client.js';
import { BmcReader } from '../service/bmc-reader.js';
import { ServiceError } from '../service/errors.js';
import { silentLogger } from '../service/logger.js';
import { UserAdmin } from '../service/user-admin.js';
import { IpmitoolProver, lanplusArgs, runIpmitool, type BmcCredential, type BmcEndpoint, type BmcProver, type ProofResult } from './bmc-proof.js';

/**
 * What one RMCP+ login attempt told us:
 * - `ok`: the session opened and Get Device ID (§20.1) answered;
 * - `rejected`: the BMC answered and refused the user or password (RAKP 2 with
 *   an error or an invalid HMAC, §13.21) — retrying would only count against
 *   the BMC's bad-password threshold (LAN parameter 26), so it is not retried;
 * - `busy`: the BMC answered but has no session to give ("insufficient
 *   resources for session", "Node busy"): try again later;
 * - `unreachable`: nothing answered within ipmitool's timeout.
 */
export type LoginVerdict = 'ok' | 'rejected' | 'busy' | 'unreachable';

export interface LoginResult {
  verdict: LoginVerdict;
  /** One line, from ipmitool's diagnostics; never holds the password. */
  detail: string;
  elapsedMs: number;
}

export interface BmcAccess {
  /** One login attempt (one session). */
  login(bmc: BmcEndpoint, cred: BmcCredential): Promise<LoginResult>;
  /** A transport for the credential engine, logged in as `cred` over lanplus. */
  openTransport(bmc: BmcEndpoint, cred: BmcCredential): Transport;
}

/** ipmitool's verbose lines that tell a refused login from a silent BMC. */
export function classifyLogin(code: number | null, stdout: string, stderr: string): { verdict: LoginVerdict; detail: string } {
  const text = stderr.replace(/\s+/g, ' ');
  if (code === 0 && /IPMI Version/.test(stdout)) return { verdict: 'ok', detail: 'mc info over lanplus' };
  if (/insufficient resources for session|Node busy|no free sessions|BMC initialization in progress|Out of space/i.test(text)) {
    return { verdict: 'busy', detail: 'the BMC has no free session (insufficient resources / busy)' };
  }
  if (/RAKP 2 HMAC is invalid|unauthorized name|RAKP 2 message indicates an error|invalid role|inactive session ID|Invalid user name|password invalid/i.test(text)) {
    return { verdict: 'rejected', detail: 'the BMC refused the user name or password (RAKP 2)' };
  }
  if (/Get Auth Capabilities error|No response|Timeout|Insufficient resources/i.test(text) || code === null) {
    return { verdict: 'unreachable', detail: 'no answer from the BMC' };
  }
  return { verdict: 'rejected', detail: `login failed: ${text.replace(/Loading IANA PEN Registry\.\.\.|Running Get VSO[^.]*|Discovered IPMB[^ ]* [^ ]*/g, '').trim().slice(0, 200)}` };
}

export interface IpmitoolBmcAccessOptions {
  ipmitoolPath?: string;
  /** Per login attempt, ms (default 15000). */
  timeoutMs?: number;
  /** ipmitool's own per-packet timeout (-N, s) and retries (-R): default 1 and 3. */
  packetTimeoutS?: number;
  packetRetries?: number;
}

export class IpmitoolBmcAccess implements BmcAccess {
  constructor(private readonly opts: IpmitoolBmcAccessOptions = {}) {}

  private common(bmc: BmcEndpoint, cred: BmcCredential): string[] {
    return lanplusArgs(bmc, cred, { packetTimeoutS: this.opts.packetTimeoutS ?? 1, packetRetries: this.opts.packetRetries ?? 3 });
  }

  async login(bmc: BmcEndpoint, cred: BmcCredential): Promise<LoginResult> {
    const started = performance.now();
    const r = await runIpmitool(this.common(bmc, cred), ['-v', 'mc', 'info'], cred, { ipmitoolPath: this.opts.ipmitoolPath, timeoutMs: this.opts.timeoutMs ?? 15_000, keepBytes: 8192 });
    return { ...classifyLogin(r.code, r.stdout, r.stderr), elapsedMs: Math.round(performance.now() - started) };
  }

  openTransport(bmc: BmcEndpoint, cred: BmcCredential): Transport {
    return new IpmitoolTransport({
      ...(this.opts.ipmitoolPath ? { ipmitoolPath: this.opts.ipmitoolPath } : {}),
      args: this.common(bmc, cred),
      env: { IPMI_PASSWORD: cred.password.reveal() },
      startTimeoutMs: 10_000,
    });
  }
}

/** Sessions a transport opened: the ipmitool shell logs in once per start. */
export function sessionsOf(t: Transport): number {
  const s = (t as unknown as { shellStarts?: number }).shellStarts;
  return typeof s === 'number' ? s : 0;
}

/** App NetFn (§5.1) and the user-management commands that write a user id. */
const APP = 0x06;
const SET_USER_ACCESS = 0x43;
const SET_USER_NAME = 0x45;
const SET_USER_PASSWORD = 0x47;
const SET_USER_PAYLOAD_ACCESS = 0x4c;
const SET_CHANNEL_ACCESS = 0x40;
const GET_SESSION_INFO = 0x3d;

/** The user id a request writes, if it is a user-management write (§22.26, §22.28, §22.30, §24.6). */
export function userWritten(req: IpmiRequest): number | null {
  if (req.netFn !== APP) return null;
  const d = req.data ?? [];
  if (req.cmd === SET_USER_NAME || req.cmd === SET_USER_PASSWORD) return (d[0] ?? 0) & 0x3f;
  if (req.cmd === SET_USER_ACCESS || req.cmd === SET_USER_PAYLOAD_ACCESS) return (d[1] ?? 0) & 0x3f;
  return null;
}

/**
 * Refuses, before it is sent, any write to the user the session is logged in
 * as (and any Set Channel Access, which could close the channel the session
 * uses): whatever slot the engine picks, the credential Ironic logs in with
 * cannot be changed, disabled or locked out through this transport.
 */
export class SessionUserGuard implements Transport {
  readonly kind: Transport['kind'];
  readonly description: string;
  readonly limits: Transport['limits'];
  refused = 0;

  constructor(private readonly inner: Transport, readonly protectedUserId: number) {
    this.kind = inner.kind;
    this.description = `${inner.description} (writes to session user ${protectedUserId} refused)`;
    this.limits = inner.limits;
  }

  send(request: IpmiRequest, options?: SendOptions): Promise<IpmiResponse> {
    const uid = userWritten(request);
    if (uid !== null && uid === this.protectedUserId) {
      this.refused++;
      return Promise.reject(new IpmiRequestError('userId', `user ${uid} is the user this session (Ironic's credential) is logged in as; it is never written before the new credential is proven`));
    }
    if (request.netFn === APP && request.cmd === SET_CHANNEL_ACCESS) {
      this.refused++;
      return Promise.reject(new IpmiRequestError('cmd', 'Set Channel Access could close the LAN channel this session uses; not sent out-of-band'));
    }
    return this.inner.send(request, options);
  }

  stats(): TransportStats {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** §22.20 Get Session Info for the current session (index 0): the user id it is logged in as. */
export async function sessionUserId(t: Transport, timeoutMs = 10_000): Promise<number> {
  const rsp = await t.send({ netFn: APP, cmd: GET_SESSION_INFO, data: [0x00] }, { timeoutMs });
  if (rsp.completionCode !== 0 || rsp.data.length < 4) {
    throw new Error(`Get Session Info answered completion code 0x${rsp.completionCode.toString(16)} with ${rsp.data.length} bytes: cannot tell which user this session is`);
  }
  const uid = rsp.data[3]! & 0x3f;
  if (uid < 1) throw new Error('Get Session Info names no user for this session');
  return uid;
}

/**
 * Paces sessions per BMC: one at a time and at least `minIntervalMs` between
 * the end of one and the start of the next, as Ironic's `[ipmi]
 * min_command_interval` does ("setting this too low may cause the BMC to
 * crash"). Keyed by host:port, so nodes sharing a BMC share the gate.
 */
export class BmcGate {
  #tails = new Map<string, Promise<void>>();
  constructor(readonly minIntervalMs: number, private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))) {}

  async run<T>(bmc: BmcEndpoint, fn: () => Promise<T>): Promise<T> {
    const key = `${bmc.host}:${bmc.port}`;
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      void this.sleep(this.minIntervalMs).then(() => {
        release();
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      });
    }
  }
}

export interface RetireResult {
  /** The user reads back disabled (§22.27), or was already. */
  ok: boolean;
  /**
   * The failure says nothing about the user (the session could not be opened,
   * a request timed out, the BMC was busy): the retirement may be tried again
   * later. False for an answer that will not change by waiting (no such user,
   * two users of that name, the never-lock-out rule).
   */
  transient: boolean;
  detail: string;
  userId?: number;
  /** RMCP+ sessions opened (the shell's logins). */
  sessions: number;
}

/**
 * Retires `username` (disables it, §22.30 operation 0) logged in over lanplus
 * as `as`, the credential Ironic now holds, and reads the user back (§22.27:
 * the enable-status bits, or IPMI messaging where the BMC leaves them
 * unspecified, as ipmi_sim does): `ok` only when the BMC says the user is
 * disabled. `user disable`'s exit code alone is not that proof — an answer lost
 * to a timeout, a session the BMC had no room for, both read as failures, and
 * the reverse (a write the BMC dropped) as success.
 *
 * `knownId` is the slot the previous user was seen logged in on (the engine's
 * session user): its name is checked and nothing else is scanned. Without it,
 * every slot's name is read and exactly one must match. The session user itself
 * is out of reach (SessionUserGuard), and UserAdmin refuses to disable the last
 * enabled administrator.
 */
export async function retireUser(
  access: BmcAccess, bmc: BmcEndpoint, as: BmcCredential, username: string,
  opts: { knownId?: number; timeoutMs?: number } = {},
): Promise<RetireResult> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const retry = { attempts: 3, initialDelayMs: 200, maxDelayMs: 2000 };
  let transport: Transport | undefined;
  let userId: number | undefined;
  try {
    transport = access.openTransport(bmc, as);
    const sessionUser = await sessionUserId(transport, timeoutMs);
    const guard = new SessionUserGuard(transport, sessionUser);
    const admin = new UserAdmin({ transport: guard, timeoutMs, retry });
    if (opts.knownId !== undefined) {
      const reader = new BmcReader(new BmcClient(guard, { logger: silentLogger, timeoutMs, retry }), silentLogger);
      const name = await reader.userName(opts.knownId);
      if (name === username) userId = opts.knownId;
    }
    if (userId === undefined) {
      const table = await admin.listUsers(await admin.defaultChannel());
      const ids = table.rows.filter((r) => r.name === username).map((r) => r.id);
      if (ids.length !== 1) return { ok: false, transient: false, detail: ids.length ? `${ids.length} users are named ${username}` : `no user named ${username}`, sessions: sessionsOf(transport) };
      userId = ids[0]!;
    }
    if (userId === sessionUser) return { ok: false, transient: false, detail: `${username} is user ${userId}, the user this session (Ironic's credential) is logged in as`, userId, sessions: sessionsOf(transport) };
    const r = await admin.setEnabled(userId, false);
    if (!r.verified) return { ok: false, transient: true, detail: `user ${userId} (${username}) disabled, but ${r.warnings.join('; ') || 'it does not read back disabled'}`, userId, sessions: sessionsOf(transport) };
    return { ok: true, transient: false, detail: `user ${userId} (${username}) disabled, reads back disabled (${r.source === 'status' ? 'enable status' : 'IPMI messaging off'})`, userId, sessions: sessionsOf(transport) };
  } catch (err) {
    const refused = err instanceof ServiceError && (err.code === 'LOCKOUT_REFUSED' || err.code === 'INVALID_REQUEST' || err.code === 'UNSUPPORTED');
    return { ok: false, transient: !refused, detail: (err as Error).message.replace(/\s+/g, ' ').slice(0, 300), ...(userId !== undefined ? { userId } : {}), sessions: transport ? sessionsOf(transport) : 0 };
  } finally {
    await transport?.close().catch(() => undefined);
  }
}

/**
 * ipmitool's proof and power read, with the retirement done by the engine
 * ({@link retireUser}: one session as the new user, the session's own user and
 * the last administrator never disabled, the result read back, §22.27). A bare
 * `ipmitool user disable` exits 0 without saying whether the BMC holds the
 * change; a rotation must not call the previous user retired on that.
 */
export class VerifiedRetireProver implements BmcProver {
  constructor(private readonly inner: BmcProver, private readonly access: BmcAccess, private readonly opts: { timeoutMs?: number } = {}) {}

  prove(bmc: BmcEndpoint, cred: BmcCredential): Promise<ProofResult> {
    return this.inner.prove(bmc, cred);
  }

  powerStatus(bmc: BmcEndpoint, cred: BmcCredential): Promise<{ ok: boolean; state?: 'power on' | 'power off'; detail: string }> {
    if (!this.inner.powerStatus) return Promise.resolve({ ok: false, detail: 'no power status reader' });
    return this.inner.powerStatus(bmc, cred);
  }

  async retire(bmc: BmcEndpoint, as: BmcCredential, username: string): Promise<{ ok: boolean; detail: string; userId?: number; transient?: boolean }> {
    const r = await retireUser(this.access, bmc, as, username, this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {});
    return { ok: r.ok, detail: r.detail, transient: r.transient, ...(r.userId !== undefined ? { userId: r.userId } : {}) };
  }
}

/** The prover the conductor's commands use: ipmitool for proofs, the engine for retirements. */
export function conductorProver(ipmitoolPath?: string): BmcProver {
  const o = ipmitoolPath ? { ipmitoolPath } : {};
  return new VerifiedRetireProver(new IpmitoolProver(o), new IpmitoolBmcAccess(o));
}
