/**
 * The credential engine: discover → choose a slot → journal → write in a
 * vendor-safe order → verify → (roll back on any failure). See index.ts for
 * the write order and the reasons behind it.
 */
import { IpmiCompletionCodeError, IpmiError, IpmiTimeoutError } from '../ipmi-kcs/errors.js';
import { CC } from '../ipmi-kcs/completion-codes.js';
import { PasswordOp, Privilege, MAX_USER_ID } from '../ipmi-kcs/spec.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { BmcClient, type RetryOptions } from './bmc-client.js';
import { BmcReader, type LanChannel } from './bmc-reader.js';
import { ServiceError } from './errors.js';
import {
  enableRequest, MalformedResponseError, passwordRequest, setChannelAccess, setUserAccess, setUserName, setUserPrivilege, wipe,
  type AccessStore, type ChannelAccess, type PasswordSize, type UserAccess, type UserChannelAccess,
} from './ipmi-commands.js';
import { Journal, type ChannelAccessSnapshot, type JournalRecord, type SlotSnapshot } from './journal.js';
import { silentLogger, type Logger } from './logger.js';
import { chooseSlot } from './slot-choice.js';
import { generatePassword, PASSWORD_POLICIES, policiesFor } from './password-generator.js';
import { anyTouched, everythingTouched, nothingTouched, restoreSlot, sameAccess, type Touched } from './rollback.js';
import type { Secret } from './secret.js';
import {
  PRIVILEGE_LEVEL, privilegeLabel,
  type BmcInfo, type ChannelAccessInfo, type RecoveryReport, type SetCredentialsRequest, type SetCredentialsResult, type Verification,
} from './types.js';
import { validateRequest, type NormalizedRequest } from './validate.js';

export interface CredentialServiceOptions {
  transport: Transport;
  logger?: Logger;
  /** Directory for the change journal (created 0700; the journal is 0600). Without it, a crash mid-change cannot be recovered. */
  stateDir?: string;
  /** Per IPMI request, ms. */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** Randomness for generated passwords; defaults to crypto.randomInt. */
  random?: { randomInt?: (max: number) => number };
  /** Back-off sleep (tests may shorten it). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Completion codes with which BMCs reject a password by policy: 0xCC (OpenBMC's
 * PAM path, Lenovo/Huawei), 0xC7 and 0xD5 — the codes MAAS moves to its next
 * candidate on (research/ipmi.md §5), plus 0xC8 (field length limit).
 */
const POLICY_REJECTION = new Set<number>([CC.INVALID_DATA_FIELD, CC.REQUEST_DATA_LENGTH_INVALID, CC.REQUEST_DATA_FIELD_LENGTH_EXCEEDED, CC.NOT_SUPPORTED_IN_PRESENT_STATE]);

/** Test Password answers meaning "not implemented here" rather than "wrong password" (0x80/0x81). */
const TEST_UNSUPPORTED = [CC.INVALID_COMMAND, CC.INVALID_DATA_FIELD, CC.NOT_SUPPORTED_IN_PRESENT_STATE, CC.SUBFUNCTION_DISABLED, CC.REQUEST_DATA_LENGTH_INVALID];
const TEST_MISMATCH = [0x80, 0x81];

const ACCESS_MODE: ChannelAccessInfo['accessMode'][] = ['disabled', 'pre-boot', 'always', 'shared'];
const SESSION_SUPPORT = ['session-less', 'single-session', 'multi-session', 'session-based'] as const;

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Secret-free facts about an IPMI failure for ServiceError details. */
function failureFacts(err: unknown): Record<string, unknown> {
  if (err instanceof IpmiCompletionCodeError) return { completionCode: err.completionCode, codeName: err.codeName, netFn: err.netFn, cmd: err.cmd };
  if (err instanceof IpmiTimeoutError) return { timeout: true, netFn: err.netFn, cmd: err.cmd, timeoutMs: err.timeoutMs };
  if (err instanceof IpmiError) return { error: err.name, ...('code' in err ? { errno: (err as { code: unknown }).code } : {}) };
  if (err instanceof MalformedResponseError) return { malformedResponse: err.what };
  return { error: err instanceof Error ? err.name : typeof err };
}

function bmcError(err: unknown, doing: string): ServiceError {
  if (err instanceof ServiceError) return err;
  return new ServiceError('BMC_ERROR', `${doing}: ${describe(err)}; nothing was changed`, { details: failureFacts(err), cause: err });
}

/** A read-back that disagreed with what was written. */
class VerificationError extends Error {
  readonly verified: Partial<Verification>;
  constructor(message: string, verified: Partial<Verification>) {
    super(message);
    this.name = 'VerificationError';
    this.verified = verified;
  }
}

function blocksLogin(a: ChannelAccess, level: number): boolean {
  return a.accessMode === 0 || a.accessMode === 1 || a.privilegeLimit < level;
}

function channelAccessInfo(a: ChannelAccess | null): ChannelAccessInfo | null {
  if (!a) return null;
  return { accessMode: ACCESS_MODE[a.accessMode] ?? 'disabled', privilegeLimit: privilegeLabel(a.privilegeLimit) };
}

/** Enabled state from Get User Access: the v2.0 status bits when given, else IPMI messaging on any channel. */
function enabledOf(access: UserAccess[]): { enabled: boolean; source: 'status' | 'ipmi-messaging' } {
  const status = access.find((a) => a.enableStatus !== null)?.enableStatus;
  if (status) return { enabled: status === 'enabled', source: 'status' };
  return { enabled: access.some((a) => a.ipmiMessaging), source: 'ipmi-messaging' };
}

/** An enabled user with IPMI messaging at administrator privilege on `ch` (§6.8, §22.26): one who can log in there and repair the BMC. */
function adminOn(snap: SlotSnapshot, ch: number): boolean {
  const a = snap.access[String(ch)];
  return snap.enabled && a !== undefined && a.ipmiMessaging && a.privilege === Privilege.ADMINISTRATOR;
}

export class CredentialService {
  readonly transport: Transport;
  #client: BmcClient;
  #logger: Logger;
  #journal: Journal | undefined;
  #randomInt: ((max: number) => number) | undefined;
  #busy = false;
  #recovered = false;

  constructor(opts: CredentialServiceOptions) {
    if (!opts?.transport) throw new TypeError('CredentialService needs a transport');
    this.transport = opts.transport;
    this.#logger = opts.logger ?? silentLogger;
    const clientOpts: ConstructorParameters<typeof BmcClient>[1] = { logger: this.#logger };
    if (opts.timeoutMs !== undefined) clientOpts.timeoutMs = opts.timeoutMs;
    if (opts.retry) clientOpts.retry = opts.retry;
    if (opts.sleep) clientOpts.sleep = opts.sleep;
    this.#client = new BmcClient(opts.transport, clientOpts);
    this.#journal = opts.stateDir ? new Journal(opts.stateDir) : undefined;
    this.#randomInt = opts.random?.randomInt;
  }

  /** True while a change (or a recovery) is running. */
  get busy(): boolean {
    return this.#busy;
  }

  /** IPMI requests sent since construction (retries included). */
  get requests(): number {
    return this.#client.requests;
  }

  #busyError(): ServiceError {
    return new ServiceError('BUSY', 'another credential change is in progress');
  }

  /**
   * Call once at start, before serving: finds a change an earlier process left
   * half done (its journal) and rolls it back. Returns what it did, or null when
   * there was nothing to recover.
   */
  async recover(): Promise<RecoveryReport | null> {
    if (this.#busy) throw this.#busyError();
    this.#busy = true;
    try {
      return await this.#recover();
    } finally {
      this.#busy = false;
    }
  }

  async #recover(): Promise<RecoveryReport | null> {
    if (!this.#journal) {
      this.#recovered = true;
      return null;
    }
    const state = await this.#journal.inspect();
    if (state.kind === 'none') {
      this.#recovered = true;
      return null;
    }
    if (state.kind === 'live') {
      throw new ServiceError('BUSY', `process ${state.record.pid} is changing user ${state.record.prior.userId} right now`, { details: { pid: state.record.pid, userId: state.record.prior.userId } });
    }
    if (state.kind === 'torn') {
      // The journal is made durable before the first BMC write, so a torn one means none happened.
      this.#logger.warn('discarding a torn change journal: the interrupted change had not written to the BMC', { path: this.#journal.path });
      await this.#journal.remove();
      this.#recovered = true;
      return { startedAt: '', pid: 0, userId: 0, username: '', outcome: 'discarded', steps: [], requests: 0 };
    }
    const rec = state.record;
    const start = this.#client.requests;
    this.#logger.warn('rolling back an interrupted credential change', { userId: rec.prior.userId, username: rec.username, startedAt: rec.startedAt, pid: rec.pid });
    const outcome = await restoreSlot(this.#client, rec.prior, rec.channelAccess, everythingTouched(rec.prior, rec.channelAccess), this.#logger);
    const report: RecoveryReport = {
      startedAt: rec.startedAt, pid: rec.pid, userId: rec.prior.userId, username: rec.username,
      outcome: outcome.ok ? 'rolled-back' : 'rollback-failed',
      steps: [...outcome.steps, ...outcome.notes.map((note) => ({ action: 'note', ok: true, note }))],
      requests: this.#client.requests - start,
    };
    if (outcome.ok) {
      await this.#journal.remove();
      this.#recovered = true;
      this.#logger.info('interrupted credential change rolled back', { userId: rec.prior.userId });
    } else {
      this.#recovered = false;
      this.#logger.error('rolling back an interrupted credential change failed; the journal is kept', { userId: rec.prior.userId, path: this.#journal.path });
    }
    return report;
  }

  async #ensureRecovered(): Promise<void> {
    if (this.#recovered) return;
    const report = await this.#recover();
    if (report?.outcome === 'rollback-failed') {
      throw new ServiceError('INTERRUPTED_CHANGE', `an interrupted change to user ${report.userId} could not be rolled back; no new change is accepted until it is`, { details: { recovery: report } });
    }
  }

  /** Reads the BMC's identity, LAN channels and user table. Never writes; may run between changes' commands. */
  async getInfo(): Promise<BmcInfo> {
    const reader = new BmcReader(this.#client, this.#logger);
    try {
      const dev = await reader.device();
      const lan = await reader.lanChannels();
      const lanChannels: BmcInfo['lanChannels'] = [];
      for (const c of lan) {
        lanChannels.push({
          channel: c.channel, medium: c.mediumName, mediumCode: c.medium, protocol: c.protocol,
          sessionSupport: SESSION_SUPPORT[c.sessionSupport] ?? 'session-less', activeSessions: c.activeSessions,
          access: {
            volatile: channelAccessInfo(await reader.channelAccess(c.channel, 'volatile')),
            nonVolatile: channelAccessInfo(await reader.channelAccess(c.channel, 'non-volatile')),
          },
        });
      }
      const info: BmcInfo = {
        device: {
          deviceId: dev.deviceId, deviceRevision: dev.deviceRevision, firmware: dev.firmware, ipmiVersion: dev.ipmiVersion,
          manufacturerId: dev.manufacturerId, productId: dev.productId, updateInProgress: dev.updateInProgress,
        },
        ipmiVersion: dev.ipmiVersion, lanChannels, maxUsers: 0, fixedNameUsers: 0, enabledUsers: 0, users: [], lan: {},
      };
      const first = lan[0];
      if (!first) return info;
      const limits = await reader.limits(first.channel);
      info.maxUsers = limits.maxUsers;
      info.fixedNameUsers = limits.fixedNameCount;
      info.enabledUsers = limits.enabledCount;
      for (let id = 1; id <= Math.min(limits.maxUsers, MAX_USER_ID); id++) {
        const access: UserAccess[] = [];
        const perChannel: BmcInfo['users'][number]['access'] = {};
        for (const c of lan) {
          const a = await reader.userAccess(c.channel, id);
          access.push(a);
          perChannel[c.channel] = { privilege: privilegeLabel(a.privilege), privilegeLevel: a.privilege, ipmiMessaging: a.ipmiMessaging, linkAuth: a.linkAuth, callin: !a.callbackOnly };
        }
        const { enabled, source } = enabledOf(access);
        info.users.push({ id, name: id === 1 ? '' : await reader.userName(id), enabled, enabledSource: source, fixedName: id <= limits.fixedNameCount, access: perChannel });
      }
      info.lan = await reader.lanAddress(lan.map((c) => c.channel));
      return info;
    } catch (err) {
      throw bmcError(err, 'reading the BMC failed');
    }
  }

  /**
   * Just the BMC's LAN identity (address, IPv6 address, MAC) — what the conductor
   * needs for its out-of-band check — without reading the whole user table:
   * Get Channel Info on 1–11 and 2–4 Get LAN Configuration Parameters (§23.2).
   */
  async getLanAddress(): Promise<BmcInfo['lan']> {
    const reader = new BmcReader(this.#client, this.#logger);
    try {
      return await reader.lanAddress((await reader.lanChannels()).map((c) => c.channel));
    } catch (err) {
      throw bmcError(err, 'reading the BMC LAN configuration failed');
    }
  }

  /**
   * Creates or updates one BMC user so it can log in over LAN. One change at a
   * time: a second call while one runs is refused with BUSY at once.
   */
  async setCredentials(request: SetCredentialsRequest): Promise<SetCredentialsResult> {
    const req = validateRequest(request);
    if (this.#busy) throw this.#busyError();
    this.#busy = true;
    try {
      await this.#ensureRecovered();
      return await this.#change(req);
    } finally {
      this.#busy = false;
    }
  }

  async #change(req: NormalizedRequest): Promise<SetCredentialsResult> {
    const client = this.#client;
    const reader = new BmcReader(client, this.#logger);
    const startRequests = client.requests;
    const level = PRIVILEGE_LEVEL[req.privilege];
    const warnings: string[] = [];
    const actions: string[] = [];

    // ---- 1. Discover (reads only; any failure here changes nothing).
    let dev, lan: LanChannel[], limits;
    try {
      dev = await reader.device();
      if (dev.updateInProgress) {
        throw new ServiceError('BMC_ERROR', 'the BMC reports a firmware update or initialisation in progress (Get Device ID byte 3 bit 7); nothing was changed', { details: { updateInProgress: true } });
      }
      lan = await reader.lanChannels(req.channels);
      if (req.channels) {
        const missing = req.channels.filter((ch) => !lan.some((c) => c.channel === ch));
        if (missing.length) throw new ServiceError('INVALID_REQUEST', `channel ${missing.join(', ')} is not a LAN channel on this BMC`, { field: 'channels', details: { notLan: missing } });
      }
      if (lan.length === 0) throw new ServiceError('UNSUPPORTED', 'the BMC reports no LAN channel (802.3 or other LAN) on channels 1–11', { details: { scanned: 11 } });
      limits = await reader.limits(lan[0]!.channel);
    } catch (err) {
      throw bmcError(err, 'discovering the BMC failed');
    }
    const v2 = dev.ipmiMajor >= 2;
    const channels = lan.map((c) => c.channel);
    const maxUsers = Math.min(limits.maxUsers, MAX_USER_ID);
    const fixed = limits.fixedNameCount;

    // Password and its size: the 20-byte form only for >16 bytes on IPMI 2.0 (§22.30).
    let secret: Secret;
    let policyAt = 0;
    const policies = policiesFor(v2 ? 20 : 16);
    const gen = (i: number): Secret => generatePassword(policies[i] ?? 0, this.#randomInt ? { randomInt: this.#randomInt } : {});
    if (req.generate) {
      secret = gen(0);
    } else {
      secret = req.password!;
      if (secret.length > 16 && !v2) {
        throw new ServiceError('UNSUPPORTED', `the BMC speaks IPMI ${dev.ipmiVersion}, whose passwords hold at most 16 bytes (the 20-byte form is IPMI 2.0 only, §22.30); this password has ${secret.length}`, { field: 'password', details: { ipmiVersion: dev.ipmiVersion, maxPasswordBytes: 16 } });
      }
    }
    const sizeOf = (s: Secret): PasswordSize => (s.length > 16 ? 20 : 16);

    try {
      // ---- 2. Choose the slot.
      const names = new Map<number, string>();
      try {
        for (let id = 2; id <= maxUsers; id++) names.set(id, await reader.userName(id));
      } catch (err) {
        throw bmcError(err, 'reading the user table failed');
      }
      const choice = chooseSlot({ username: req.username, slot: req.slot, allowFixedSlot: req.allowFixedSlot, names, maxUsers, fixedNameCount: fixed });
      const { userId: uid, how, currentName } = choice;
      warnings.push(...choice.warnings);

      // ---- 3. Snapshot the slot (for idempotency and roll-back) and the channels.
      let prior: SlotSnapshot;
      const channelSnaps: ChannelAccessSnapshot[] = [];
      const channelWrites: Array<{ channel: number; store: AccessStore; to: ChannelAccess }> = [];
      let addr;
      let pretest: SetCredentialsResult['passwordBefore'] = currentName === '' ? 'empty-slot' : 'unknown';
      let testUnreliable = false;
      try {
        prior = await this.#snapshot(reader, uid, currentName, channels);
        // Planned before the journal and the first write: a refused change writes nothing.
        const lockout = await this.#lockout(reader, uid, prior, req, names, channels, level);
        if (lockout) {
          const what = lockout.renamed ? `renaming it to "${req.username}"` : `setting its privilege to ${req.privilege}`;
          const whom = `user ${uid} ("${currentName}") is the last enabled administrator on LAN channel${lockout.channels.length === 1 ? '' : 's'} ${lockout.channels.join(', ')}`;
          if (!req.allowLockout) {
            throw new ServiceError('LOCKOUT_REFUSED', `${whom}; ${what} would leave nobody able to administer the BMC over LAN there. Nothing was written; `
              + `give another administrator first, or set allowLockout (allow_lockout, --allow-lockout) to do it anyway`,
            { field: lockout.renamed ? (how === 'explicit' ? 'slot' : 'username') : 'privilege', details: { userId: uid, channels: lockout.channels, renamed: lockout.renamed } });
          }
          warnings.push(`${whom}; ${what} as asked (allowLockout): no enabled administrator it had is left there`);
        }
        for (const ch of channels) {
          const snap: ChannelAccessSnapshot = { channel: ch, stores: {} };
          for (const store of (req.enableChannelAccess ? ['volatile', 'non-volatile'] : ['volatile']) as AccessStore[]) {
            const a = await reader.channelAccess(ch, store);
            if (!a) {
              warnings.push(`channel ${ch} does not report its ${store} access; cannot tell whether it allows LAN logins`);
              continue;
            }
            snap.stores[store] = a;
            if (!blocksLogin(a, level)) continue;
            if (req.enableChannelAccess) {
              channelWrites.push({ channel: ch, store, to: { ...a, accessMode: a.accessMode <= 1 ? 2 : a.accessMode, privilegeLimit: Math.max(a.privilegeLimit, level) } });
            } else {
              warnings.push(`channel ${ch} ${store} access (mode ${ACCESS_MODE[a.accessMode]}, privilege limit ${privilegeLabel(a.privilegeLimit)}) blocks ${req.privilege} LAN logins; enableChannelAccess would fix it`);
            }
          }
          if (channelWrites.some((w) => w.channel === ch)) channelSnaps.push(snap);
        }
        addr = await reader.lanAddress(channels);
        if (!req.generate && currentName === req.username) {
          ({ before: pretest, unreliable: testUnreliable } = await this.#passwordBefore(uid, secret, sizeOf(secret)));
        }
      } catch (err) {
        throw bmcError(err, 'reading the BMC failed');
      }
      // Non-volatile first, so the present setting is never ahead of what survives a reset.
      channelWrites.sort((a, b) => a.channel - b.channel || (a.store === 'non-volatile' ? -1 : 1) - (b.store === 'non-volatile' ? -1 : 1));

      // ---- 4. Journal, then write.
      let record: JournalRecord | undefined;
      if (this.#journal) {
        try {
          record = await this.#beginJournal(req.username, prior, channelSnaps);
        } catch (err) {
          if (err instanceof ServiceError) throw err;
          throw new Error(`cannot write the change journal ${this.#journal.path} (${describe(err)}); nothing was written to the BMC`, { cause: err });
        }
      }
      const touched = nothingTouched();
      let firstWrite = true;
      /** Writes that changed observable state (re-sent idempotent writes do not count). */
      let changes = 0;
      const desired: UserChannelAccess = { privilege: level, ipmiMessaging: true, linkAuth: true, callbackOnly: false };
      const write = async (mark: (t: Touched) => void, run: () => Promise<unknown>): Promise<void> => {
        mark(touched);
        try {
          await run();
        } catch (err) {
          // A refused first write (a completion code, not a lost response) changed nothing.
          if (firstWrite && err instanceof IpmiCompletionCodeError) Object.assign(touched, nothingTouched());
          throw err;
        }
        firstWrite = false;
      };
      let verified: Verification;
      let policyNote: string | undefined;
      try {
        this.#logger.info('changing BMC user', { userId: uid, username: req.username, slot: how, channels, privilege: req.privilege });
        // §22.28 Set User Name first: Dell R420 needs the name before password and enable.
        if (currentName !== req.username) {
          await write((t) => (t.name = true), () => client.call(setUserName(uid, req.username), { what: `Set User Name (user ${uid})` }));
          changes++;
          actions.push(`wrote: user ${uid} name "${req.username}"`);
        } else {
          actions.push(`in place: user ${uid} name "${req.username}"`);
        }
        // §22.30 Set User Password, op 2. Passwords are write-only, so it is always written.
        for (;;) {
          const size = sizeOf(secret);
          const pwReq = passwordRequest(uid, PasswordOp.SET_PASSWORD, secret, size);
          try {
            await write((t) => (t.password = true), () => client.call(pwReq, { what: `Set User Password (user ${uid}, ${size}-byte form)` }));
            break;
          } catch (err) {
            const rejected = err instanceof IpmiCompletionCodeError && POLICY_REJECTION.has(err.completionCode);
            if (!(req.generate && rejected && policyAt + 1 < policies.length)) {
              if (rejected) policyNote = req.generate ? 'the BMC rejected every password policy' : 'the BMC rejected this password (completion code suggests its password policy)';
              throw err;
            }
            const was = PASSWORD_POLICIES[policies[policyAt]!]!.name;
            policyAt++;
            const next = PASSWORD_POLICIES[policies[policyAt]!]!.name;
            actions.push(`rejected: generated password of policy ${was} (completion code 0x${(err as IpmiCompletionCodeError).completionCode.toString(16)}); trying policy ${next}`);
            this.#logger.warn('BMC rejected a generated password; trying the next policy', { userId: uid, policy: was, next, completionCode: (err as IpmiCompletionCodeError).completionCode });
            secret.dispose();
            secret = gen(policyAt);
          } finally {
            wipe(pwReq);
          }
        }
        const size = sizeOf(secret);
        if (pretest === 'matched') actions.push(`in place: user ${uid} password (Test Password matched before; re-written, ${size}-byte form)`);
        else if (pretest === 'unknown' && !req.generate) actions.push(`wrote: user ${uid} password (${size}-byte form; whether it differed is unknown: ${testUnreliable ? 'this BMC\'s Test Password accepts any password' : 'this BMC does not implement Test Password'})`);
        else actions.push(`wrote: user ${uid} password (${size}-byte form${req.generate ? `, policy ${PASSWORD_POLICIES[policies[policyAt]!]!.name}` : ''})`);
        // §22.30 op 1 enable, after name and password (Dell R610/R710 answer 0xD5 before).
        if (prior.enabled && prior.enabledSource === 'status') {
          actions.push(`in place: user ${uid} enabled`);
        } else {
          await write((t) => (t.enable = true), async () => {
            const rsp = await client.call(enableRequest(uid, true), { what: `Set User Password enable (user ${uid})`, accept: [CC.REQUEST_DATA_LENGTH_INVALID] });
            if (rsp.completionCode === CC.REQUEST_DATA_LENGTH_INVALID) await client.call(enableRequest(uid, true, true), { what: `Set User Password enable, 2-byte form (user ${uid})` });
          });
          // Without enable-status bits (IPMI 1.5, ipmi_sim) the state cannot be read, so
          // enable is always sent; it counts as a change only if the slot looked disabled.
          if (prior.enabled) actions.push(`in place: user ${uid} enabled (IPMI messaging on; enable re-sent, this BMC does not report enable status)`);
          else {
            changes++;
            actions.push(`wrote: user ${uid} enabled`);
          }
        }
        // §22.26 Set User Access on every LAN channel.
        for (const ch of channels) {
          const label = `user ${uid} channel ${ch} access: ${req.privilege}, IPMI messaging, link auth, callin`;
          if (sameAccess(prior.access[String(ch)]!, desired)) {
            actions.push(`in place: ${label}`);
            continue;
          }
          await write((t) => t.access.add(ch), async () => {
            const what = `Set User Access (channel ${ch}, user ${uid})`;
            const rsp = await client.call(setUserAccess(ch, uid, desired), { what, accept: [CC.INVALID_DATA_FIELD] });
            if (rsp.completionCode === CC.INVALID_DATA_FIELD) {
              // Supermicro-like firmware refuses enabling IPMI messaging while the privilege
              // limit is still "no access" (canonical/maas bmc_config.py): privilege alone
              // first (byte 1 bit 7 clear leaves bits 6:4 untouched), then the whole set.
              await client.call(setUserPrivilege(ch, uid, level), { what: `${what}, privilege only` });
              await client.call(setUserAccess(ch, uid, desired), { what });
            }
          });
          changes++;
          actions.push(`wrote: ${label}`);
        }
        // §22.22 Set Channel Access, opt-in, only where it blocks logins.
        for (const w of channelWrites) {
          await write((t) => t.channelAccess.add(w.channel), () => client.call(setChannelAccess(w.channel, w.store, w.to), { what: `Set Channel Access (channel ${w.channel}, ${w.store})` }));
          changes++;
          actions.push(`wrote: channel ${w.channel} ${w.store} access: always available, privilege limit ${privilegeLabel(w.to.privilegeLimit)}`);
        }

        // ---- 5. Verify in-band.
        reader.forgetUsers();
        verified = await this.#verify(reader, uid, req, secret, size, channels, channelWrites);
        if (testUnreliable && verified.passwordTest === 'passed') verified.passwordTest = 'unreliable';
      } catch (err) {
        throw await this.#rollBack(err, { uid, prior, channelSnaps, touched, record, policyNote, actions });
      }
      if (record) await this.#journal!.remove(record);

      // A password counts as a change when known to differ (or freshly generated); when the
      // BMC cannot tell (no or unreliable Test Password) only observable state counts.
      const changed = changes > 0 || pretest === 'differed' || pretest === 'empty-slot' || req.generate;
      const result: SetCredentialsResult = {
        userId: uid, username: req.username, privilege: req.privilege, channels, passwordSize: sizeOf(secret), slot: how,
        changed, passwordBefore: req.generate && pretest !== 'empty-slot' ? 'unknown' : pretest, actions, verified, warnings,
        bmc: {
          ipmiVersion: dev.ipmiVersion, manufacturerId: dev.manufacturerId, productId: dev.productId, firmware: dev.firmware,
          ...(addr.channel !== undefined ? { lanChannel: addr.channel } : {}),
          ...(addr.address ? { address: addr.address } : {}), ...(addr.v6address ? { v6address: addr.v6address } : {}), ...(addr.mac ? { mac: addr.mac } : {}),
        },
        requests: client.requests - startRequests,
      };
      if (req.generate) {
        result.generatedPassword = secret;
        result.passwordPolicy = PASSWORD_POLICIES[policies[policyAt]!]!.name;
      }
      this.#logger.info('BMC user changed and verified', { userId: uid, username: req.username, changed, requests: result.requests, passwordTest: verified.passwordTest });
      return result;
    } catch (err) {
      if (req.generate) secret.dispose();
      throw err;
    }
  }

  async #snapshot(reader: BmcReader, uid: number, name: string, channels: number[]): Promise<SlotSnapshot> {
    const access: Record<string, UserChannelAccess> = {};
    const raw: UserAccess[] = [];
    for (const ch of channels) {
      const a = await reader.userAccess(ch, uid);
      raw.push(a);
      access[String(ch)] = { privilege: a.privilege, ipmiMessaging: a.ipmiMessaging, linkAuth: a.linkAuth, callbackOnly: a.callbackOnly };
    }
    const { enabled, source } = enabledOf(raw);
    return { userId: uid, name, enabled, enabledSource: source, access };
  }

  /**
   * The lock-out rule, decided from BMC state before anything is written: after
   * the change, every LAN channel where an enabled administrator could log in
   * must still have one of those administrators (same slot, same name, still
   * enabled with IPMI messaging at administrator privilege, §6.8/§22.26).
   * The change writes only slot `uid`: its name, enabled state and its access on
   * `channels`; so it can lose an administrator by demoting it on those
   * channels, or by renaming (reusing) its slot, which loses it everywhere.
   * Returns the channels left without one, or null. User 1 (anonymous, §6.9.1)
   * does not count: an operator logs in by name.
   */
  async #lockout(
    reader: BmcReader, uid: number, prior: SlotSnapshot, req: NormalizedRequest, names: Map<number, string>, channels: number[], level: number,
  ): Promise<{ channels: number[]; renamed: boolean } | null> {
    if (prior.name === '') return null;
    const renamed = prior.name !== req.username;
    let before = prior;
    let scope = channels;
    if (renamed && req.channels) {
      // A rename loses the administrator on every LAN channel, not just the ones asked for.
      scope = (await reader.lanChannels()).map((c) => c.channel);
      before = await this.#snapshot(reader, uid, prior.name, scope);
    }
    const after = (ch: number): boolean => !renamed && (!channels.includes(ch) ? adminOn(before, ch) : level === Privilege.ADMINISTRATOR);
    const lost = scope.filter((ch) => adminOn(before, ch) && !after(ch));
    if (!lost.length) return null;
    const uncovered = new Set(lost);
    for (const [id, name] of names) {
      if (id === uid || name === '' || uncovered.size === 0) continue;
      const other = await this.#snapshot(reader, id, name, [...uncovered]);
      for (const ch of [...uncovered]) if (adminOn(other, ch) && !other.access[String(ch)]!.callbackOnly) uncovered.delete(ch);
    }
    return uncovered.size ? { channels: [...uncovered].sort((a, b) => a - b), renamed } : null;
  }

  /**
   * Whether the slot already holds `secret`, by Test Password (§22.30 op 3) — and,
   * when that says "match", a second test with a random wrong password as a
   * control: some BMCs (ipmi_sim) answer 0x00 to any test, and then a match means
   * nothing. The correct-password test that follows in verification resets any
   * failed-attempt counter a PAM-based BMC keeps.
   */
  async #passwordBefore(uid: number, secret: Secret, size: PasswordSize): Promise<{ before: 'matched' | 'differed' | 'unknown'; unreliable: boolean }> {
    const first = await this.#testPassword(uid, secret, size);
    if (first !== 'match') return { before: first === 'differs' ? 'differed' : 'unknown', unreliable: false };
    const decoy = generatePassword(0, this.#randomInt ? { randomInt: this.#randomInt } : {});
    try {
      const control = await this.#testPassword(uid, decoy, size);
      return control === 'differs' ? { before: 'matched', unreliable: false } : { before: 'unknown', unreliable: control === 'match' };
    } finally {
      decoy.dispose();
    }
  }

  /** Test Password (§22.30 op 3) without failing: match / differs (0x80, 0x81) / unknown. */
  async #testPassword(uid: number, secret: Secret, size: PasswordSize): Promise<'match' | 'differs' | 'unknown'> {
    const req = passwordRequest(uid, PasswordOp.TEST_PASSWORD, secret, size);
    try {
      const rsp = await this.#client.call(req, { what: `Test Password (user ${uid})`, accept: [...TEST_MISMATCH, ...TEST_UNSUPPORTED] });
      if (rsp.completionCode === CC.OK) return 'match';
      return TEST_MISMATCH.includes(rsp.completionCode) ? 'differs' : 'unknown';
    } finally {
      wipe(req);
    }
  }

  async #verify(
    reader: BmcReader, uid: number, req: NormalizedRequest, secret: Secret, size: PasswordSize, channels: number[],
    channelWrites: Array<{ channel: number; store: AccessStore }>,
  ): Promise<Verification> {
    const level = PRIVILEGE_LEVEL[req.privilege];
    const testReq = passwordRequest(uid, PasswordOp.TEST_PASSWORD, secret, size);
    let test;
    try {
      test = await this.#client.call(testReq, { what: `Test Password (user ${uid})`, accept: [...TEST_MISMATCH, ...TEST_UNSUPPORTED] });
    } finally {
      wipe(testReq);
    }
    const v: Verification = { passwordTest: 'passed', name: false, enabled: false, enabledSource: 'status', access: {} };
    if (TEST_MISMATCH.includes(test.completionCode)) {
      throw new VerificationError(`Test Password for user ${uid} failed with completion code 0x${test.completionCode.toString(16)}: the BMC does not hold the password just set`, v);
    }
    if (test.completionCode !== CC.OK) {
      v.passwordTest = 'unsupported';
      v.passwordTestCode = test.completionCode;
    }
    v.name = (await reader.userName(uid)) === req.username;
    const raw: UserAccess[] = [];
    for (const ch of channels) {
      const a = await reader.userAccess(ch, uid);
      raw.push(a);
      v.access[ch] = a.privilege === level && a.ipmiMessaging && a.linkAuth && !a.callbackOnly;
    }
    const en = enabledOf(raw);
    v.enabled = en.enabled;
    v.enabledSource = en.source;
    if (channelWrites.length) {
      v.channelAccess = {};
      for (const w of channelWrites) {
        const a = await reader.channelAccess(w.channel, w.store);
        v.channelAccess[w.channel] = (v.channelAccess[w.channel] ?? true) && a !== null && !blocksLogin(a, level);
      }
    }
    const bad = [
      !v.name && 'name',
      !v.enabled && 'enabled state',
      ...Object.entries(v.access).filter(([, ok]) => !ok).map(([ch]) => `channel ${ch} access`),
      ...Object.entries(v.channelAccess ?? {}).filter(([, ok]) => !ok).map(([ch]) => `channel ${ch} channel access`),
    ].filter(Boolean);
    if (bad.length) throw new VerificationError(`read-back of user ${uid} disagrees with what was written: ${bad.join(', ')}`, v);
    return v;
  }

  async #beginJournal(username: string, prior: SlotSnapshot, channelAccess: ChannelAccessSnapshot[]): Promise<JournalRecord> {
    const journal = this.#journal!;
    for (let attempt = 0; ; attempt++) {
      try {
        return await journal.begin({ username, prior, channelAccess });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
        // Another process left (or is writing) a journal since recover(): same rules.
        await this.#ensureRecoveredAgain();
      }
    }
  }

  async #ensureRecoveredAgain(): Promise<void> {
    this.#recovered = false;
    await this.#ensureRecovered();
  }

  async #rollBack(
    err: unknown,
    ctx: { uid: number; prior: SlotSnapshot; channelSnaps: ChannelAccessSnapshot[]; touched: Touched; record: JournalRecord | undefined; policyNote: string | undefined; actions: string[] },
  ): Promise<ServiceError> {
    const { uid, prior, channelSnaps, touched, record } = ctx;
    const failure = { message: describe(err), ...failureFacts(err), ...(ctx.policyNote ? { hint: ctx.policyNote } : {}) };
    const verification = err instanceof VerificationError ? err.verified : undefined;
    if (!anyTouched(touched)) {
      if (record) await this.#journal!.remove(record);
      this.#logger.warn('BMC refused the first write; nothing was changed', { userId: uid, error: failure.message });
      return new ServiceError('BMC_ERROR', `${describe(err)}; nothing was changed${ctx.policyNote ? ` (${ctx.policyNote})` : ''}`, { details: { userId: uid, failure, actions: ctx.actions }, cause: err });
    }
    this.#logger.warn('credential change failed; rolling back', { userId: uid, error: failure.message });
    const outcome = await restoreSlot(this.#client, prior, channelSnaps, touched, this.#logger);
    const details = { userId: uid, failure, ...(verification ? { verification } : {}), actions: ctx.actions, rollback: outcome.steps, notes: outcome.notes };
    if (outcome.ok) {
      if (record) await this.#journal!.remove(record);
      return new ServiceError('ROLLED_BACK', `${describe(err)}; user ${uid} was restored to its previous state${outcome.notes.length ? ` (${outcome.notes.join('; ')})` : ''}`, { details, cause: err });
    }
    // Keep the journal: the next start (or the next change) retries the roll-back.
    if (record) this.#journal!.release(record);
    this.#recovered = !record;
    const failed = outcome.steps.filter((s) => !s.ok).map((s) => s.action);
    return new ServiceError('ROLLBACK_FAILED', `${describe(err)}; restoring user ${uid} failed too (${failed.join('; ')})${record ? '; the journal is kept and the roll-back is retried before the next change' : ''}`, { details, cause: err });
  }
}
