/**
 * The BMC reads and small writes an operator does by hand with ipmitool —
 * `user list`, `user enable|disable`, `channel info`, `mc info` — through the
 * same client (timeouts, safe retries) and readers a credential change uses.
 *
 * Disabling obeys the never-lock-out rule: the last enabled administrator (an
 * enabled user with IPMI messaging at ADMINISTRATOR on some LAN channel) is not
 * disabled unless the caller says `allowLockout`. Nothing is written when
 * the rule refuses.
 *
 * Enable and disable are read back (Get User Access §22.27: the enable-status
 * bits, or IPMI messaging where the BMC leaves them unspecified, as
 * ipmi_sim and IPMI 1.5 BMCs do); the result says which was read.
 */
import { CC } from '../ipmi-kcs/completion-codes.js';
import { IpmiCompletionCodeError } from '../ipmi-kcs/errors.js';
import { MAX_USER_ID, PasswordOp, Privilege } from '../ipmi-kcs/spec.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { BmcClient, type RetryOptions } from './bmc-client.js';
import { BmcReader } from './bmc-reader.js';
import { ServiceError } from './errors.js';
import { enableRequest, getChannelInfo, getDeviceId, passwordRequest, setUserPrivilege, wipe, type ChannelAccess, type PasswordSize, type UserAccess } from './ipmi-commands.js';
import { silentLogger, type Logger } from './logger.js';
import type { Secret } from './secret.js';

export interface UserAdminOptions {
  transport: Transport;
  logger?: Logger;
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
}

export interface UserRow {
  id: number;
  name: string;
  /** ipmitool's "Callin": the user is not restricted to callback (§22.27 byte 4 bit 6 clear). */
  callin: boolean;
  linkAuth: boolean;
  ipmiMessaging: boolean;
  privilege: number;
  /** §22.27 byte 2 bits 7:6, or null when the BMC leaves them unspecified. */
  enableStatus: 'enabled' | 'disabled' | null;
}

export interface UserTable {
  channel: number;
  maxUsers: number;
  enabledCount: number;
  fixedNameCount: number;
  rows: UserRow[];
}

export interface ChannelReport {
  channel: number;
  medium: number;
  protocol: number;
  sessionSupport: number;
  activeSessions: number;
  vendorId: number;
  /** Only for LAN channels (as ipmitool shows); null where Get Channel Access is unsupported. */
  access?: { volatile: ChannelAccess | null; nonVolatile: ChannelAccess | null };
}

export interface DeviceReport {
  deviceId: number;
  deviceRevision: number;
  providesSdrs: boolean;
  /** §20.1 byte 3 bit 7 clear: normal operation. */
  available: boolean;
  firmwareMajor: number;
  /** BCD, printed as two hex digits (9.08). */
  firmwareMinor: number;
  ipmiVersion: string;
  additionalSupport: number;
  manufacturerId: number;
  productId: number;
  /** Bytes 12..15 when present. */
  auxFirmware?: number[];
}

export interface EnableResult {
  userId: number;
  name: string;
  enabled: boolean;
  /** The read-back agreed with what was asked. */
  verified: boolean;
  /** How the read-back was read: the §22.27 status bits or IPMI messaging (see the module doc). */
  source: 'status' | 'ipmi-messaging';
  channels: number[];
  /** The BMC's kind (`simulated` means no real BMC was changed). */
  backend: Transport['kind'];
  warnings: string[];
}

export interface PrivilegeResult {
  userId: number;
  name: string;
  level: number;
  channels: number[];
  /** The privilege limit read back per channel. */
  readBack: Record<number, number>;
  verified: boolean;
  backend: Transport['kind'];
  warnings: string[];
}

const lanOf = (channels: { channel: number }[]): number[] => channels.map((c) => c.channel);

function enabledOf(access: UserAccess[]): { enabled: boolean; source: 'status' | 'ipmi-messaging' } {
  const status = access.find((a) => a.enableStatus !== null)?.enableStatus;
  if (status) return { enabled: status === 'enabled', source: 'status' };
  return { enabled: access.some((a) => a.ipmiMessaging), source: 'ipmi-messaging' };
}

const isAdminOn = (access: UserAccess[]): boolean => access.some((a) => a.ipmiMessaging && a.privilege === Privilege.ADMINISTRATOR);

export class UserAdmin {
  readonly transport: Transport;
  readonly #client: BmcClient;
  readonly #logger: Logger;

  constructor(opts: UserAdminOptions) {
    this.transport = opts.transport;
    this.#logger = opts.logger ?? silentLogger;
    this.#client = new BmcClient(opts.transport, {
      logger: this.#logger, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.retry ? { retry: opts.retry } : {}),
    });
  }

  #reader(): BmcReader {
    return new BmcReader(this.#client, this.#logger);
  }

  /** The LAN channels (§22.24 medium 802.3 / other LAN) in channel order. */
  async lanChannels(): Promise<number[]> {
    return lanOf(await this.#reader().lanChannels());
  }

  /** The channel `user list` and `channel info` use without one given: the first LAN channel. */
  async defaultChannel(): Promise<number> {
    const lan = await this.lanChannels();
    if (lan[0] === undefined) throw new ServiceError('UNSUPPORTED', 'the BMC reports no LAN channel on 1-11; give the channel number');
    return lan[0];
  }

  /**
   * Every user id 1..max (as ipmitool 1.8.19 lists them): Get User Access on
   * `channel`, then Get User Name (0xCC/0xC9/0xCB: empty, as the credential
   * change reads them).
   */
  async listUsers(channel: number): Promise<UserTable> {
    const reader = this.#reader();
    const rows: UserRow[] = [];
    let limits: { maxUsers: number; enabledCount: number; fixedNameCount: number } | undefined;
    for (let id = 1; id <= (limits?.maxUsers ?? 1) && id <= MAX_USER_ID; id++) {
      const a = await reader.userAccess(channel, id);
      limits ??= { maxUsers: a.maxUsers, enabledCount: a.enabledCount, fixedNameCount: a.fixedNameCount };
      const name = await reader.userName(id);
      rows.push({ id, name, callin: !a.callbackOnly, linkAuth: a.linkAuth, ipmiMessaging: a.ipmiMessaging, privilege: a.privilege, enableStatus: a.enableStatus });
    }
    return { channel, maxUsers: limits?.maxUsers ?? 0, enabledCount: limits?.enabledCount ?? 0, fixedNameCount: limits?.fixedNameCount ?? 0, rows };
  }

  /** §22.24 Get Channel Info (and §22.23 Get Channel Access on LAN channels); null when the channel does not exist. */
  async channelInfo(channel: number): Promise<ChannelReport | null> {
    const rsp = await this.#client.call(getChannelInfo(channel), {
      what: `Get Channel Info (channel ${channel})`, accept: [CC.NOT_PRESENT, CC.INVALID_DATA_FIELD, CC.PARAMETER_OUT_OF_RANGE], minLength: 4,
    });
    if (rsp.completionCode !== CC.OK) return null;
    const d = rsp.data;
    const b = (i: number): number => d[i] ?? 0;
    const report: ChannelReport = {
      channel: b(0) & 0x0f, medium: b(1) & 0x7f, protocol: b(2) & 0x1f, sessionSupport: b(3) >> 6, activeSessions: b(3) & 0x3f,
      vendorId: b(4) | (b(5) << 8) | (b(6) << 16),
    };
    if (report.medium === 0x04 || report.medium === 0x06) {
      const reader = this.#reader();
      report.access = { volatile: await reader.channelAccess(channel, 'volatile'), nonVolatile: await reader.channelAccess(channel, 'non-volatile') };
    }
    return report;
  }

  /** §20.1 Get Device ID, every field `ipmitool mc info` prints. */
  async device(): Promise<DeviceReport> {
    const d = await this.#client.data(getDeviceId(), { what: 'Get Device ID', minLength: 11 });
    const b = (i: number): number => d[i] ?? 0;
    return {
      deviceId: b(0), deviceRevision: b(1) & 0x0f, providesSdrs: (b(1) & 0x80) !== 0, available: (b(2) & 0x80) === 0,
      firmwareMajor: b(2) & 0x7f, firmwareMinor: b(3), ipmiVersion: `${b(4) & 0x0f}.${b(4) >> 4}`, additionalSupport: b(5),
      manufacturerId: (b(6) | (b(7) << 8) | (b(8) << 16)) & 0x0fffff, productId: b(9) | (b(10) << 8),
      ...(d.length >= 15 ? { auxFirmware: [b(11), b(12), b(13), b(14)] } : {}),
    };
  }

  /**
   * Sets user `userId`'s privilege limit on `channel` (default: every LAN
   * channel) with §22.26 Set User Access, byte 1 bit 7 clear: only the
   * privilege changes, callin/link/messaging stay as they are (ipmitool
   * `user priv`). Read back per channel. Lowering the last enabled
   * administrator is refused (LOCKOUT_REFUSED) unless `allowLockout`.
   */
  async setPrivilege(userId: number, level: number, opts: { channel?: number; allowLockout?: boolean } = {}): Promise<PrivilegeResult> {
    if (!Number.isInteger(userId) || userId < 1 || userId > MAX_USER_ID) throw new ServiceError('INVALID_REQUEST', `user id ${userId}: must be 1-${MAX_USER_ID}`, { field: 'userId' });
    const reader = this.#reader();
    const lan = await this.lanChannels();
    const channels = opts.channel !== undefined ? [opts.channel] : lan;
    if (!channels.length) throw new ServiceError('UNSUPPORTED', 'the BMC reports no LAN channel on 1-11; give the channel number');
    const limits = await reader.limits(channels[0]!);
    if (userId > limits.maxUsers) throw new ServiceError('INVALID_REQUEST', `user id ${userId}: this BMC has ${limits.maxUsers} user ids`, { field: 'userId' });
    const name = await reader.userName(userId);
    const warnings: string[] = [];
    if (level !== Privilege.ADMINISTRATOR && lan.length) {
      const access = async (id: number): Promise<UserAccess[]> => Promise.all(lan.map((ch) => reader.userAccess(ch, id)));
      const mine = await access(userId);
      // After the change: still an administrator on a LAN channel this call leaves alone?
      const stillAdmin = mine.some((a, i) => !channels.includes(lan[i]!) && a.ipmiMessaging && a.privilege === Privilege.ADMINISTRATOR);
      if (enabledOf(mine).enabled && isAdminOn(mine) && !stillAdmin) {
        let otherAdmin = false;
        for (let id = 1; id <= Math.min(limits.maxUsers, MAX_USER_ID) && !otherAdmin; id++) {
          if (id === userId) continue;
          const a = await access(id);
          otherAdmin = enabledOf(a).enabled && isAdminOn(a);
        }
        if (!otherAdmin) {
          if (!opts.allowLockout) {
            throw new ServiceError('LOCKOUT_REFUSED', `user ${userId} ("${name}") is the last enabled administrator; lowering its privilege could lock everyone out. Nothing was written`, { field: 'userId', details: { userId } });
          }
          warnings.push(`user ${userId} was the last enabled administrator (lowered as asked)`);
        }
      }
    }
    for (const ch of channels) await this.#client.call(setUserPrivilege(ch, userId, level), { what: `Set User Access (privilege, channel ${ch}, user ${userId})` });
    reader.forgetUsers();
    const readBack: Record<number, number> = {};
    for (const ch of channels) readBack[ch] = (await reader.userAccess(ch, userId)).privilege;
    const verified = channels.every((ch) => readBack[ch] === level);
    if (!verified) warnings.push(`the privilege reads back ${channels.map((ch) => `${readBack[ch]} on channel ${ch}`).join(', ')}`);
    return { userId, name, level, channels, readBack, verified, backend: this.transport.kind, warnings };
  }

  /**
   * §22.30 operation 3, Test Password, like `ipmitool user test ID 16|20`:
   * 'success' (0x00), 'incorrect' (0x80), 'wrong-size' (0x81). Some BMCs
   * (ipmi_sim) answer 0x00 to any password: a success is what the BMC said, not
   * a login; the LAN login stays the proof. The request bytes are wiped after sending.
   */
  async testPassword(userId: number, password: Secret, size: PasswordSize): Promise<'success' | 'incorrect' | 'wrong-size'> {
    if (!Number.isInteger(userId) || userId < 1 || userId > MAX_USER_ID) throw new ServiceError('INVALID_REQUEST', `user id ${userId}: must be 1-${MAX_USER_ID}`, { field: 'userId' });
    if (password.length > size) throw new ServiceError('INVALID_REQUEST', `the password is ${password.length} bytes; the ${size}-byte form holds at most ${size}`, { field: 'password' });
    const req = passwordRequest(userId, PasswordOp.TEST_PASSWORD, password, size);
    try {
      const rsp = await this.#client.call(req, { what: `Test Password (user ${userId})`, accept: [0x80, 0x81] });
      return rsp.completionCode === CC.OK ? 'success' : rsp.completionCode === 0x80 ? 'incorrect' : 'wrong-size';
    } finally {
      wipe(req);
    }
  }

  /**
   * Enables or disables user `userId` (§22.30 operation 1 / 0) and reads it back.
   * Disabling the last enabled administrator is refused (LOCKOUT_REFUSED) unless
   * `allowLockout`; nothing is written then.
   */
  async setEnabled(userId: number, enable: boolean, opts: { allowLockout?: boolean } = {}): Promise<EnableResult> {
    if (!Number.isInteger(userId) || userId < 1 || userId > MAX_USER_ID) throw new ServiceError('INVALID_REQUEST', `user id ${userId}: must be 1-${MAX_USER_ID}`, { field: 'userId' });
    const reader = this.#reader();
    const channels = await this.lanChannels();
    if (!channels.length) throw new ServiceError('UNSUPPORTED', 'the BMC reports no LAN channel on 1-11');
    const limits = await reader.limits(channels[0]!);
    if (userId > limits.maxUsers) throw new ServiceError('INVALID_REQUEST', `user id ${userId}: this BMC has ${limits.maxUsers} user ids`, { field: 'userId' });
    const access = async (id: number): Promise<UserAccess[]> => Promise.all(channels.map((ch) => reader.userAccess(ch, id)));
    const name = await reader.userName(userId);
    const warnings: string[] = [];

    if (!enable) {
      const mine = await access(userId);
      if (enabledOf(mine).enabled && isAdminOn(mine)) {
        let otherAdmin = false;
        for (let id = 1; id <= Math.min(limits.maxUsers, MAX_USER_ID) && !otherAdmin; id++) {
          if (id === userId) continue;
          const a = await access(id);
          otherAdmin = enabledOf(a).enabled && isAdminOn(a);
        }
        if (!otherAdmin) {
          if (!opts.allowLockout) {
            throw new ServiceError('LOCKOUT_REFUSED', `user ${userId} ("${name}") is the last enabled administrator; disabling it could lock everyone out. Nothing was written`, { field: 'userId', details: { userId } });
          }
          warnings.push(`user ${userId} was the last enabled administrator (disabled as asked)`);
        }
      }
    }

    const what = `Set User Password (${enable ? 'enable' : 'disable'} user ${userId})`;
    try {
      await this.#client.call(enableRequest(userId, enable), { what });
    } catch (err) {
      // Some BMCs want the 2-byte form the spec allows for operations 0/1 (§22.30); see ipmi-commands.ts.
      if (!(err instanceof IpmiCompletionCodeError) || err.completionCode !== CC.REQUEST_DATA_LENGTH_INVALID) throw err;
      await this.#client.call(enableRequest(userId, enable, true), { what });
    }
    reader.forgetUsers();
    const after = enabledOf(await access(userId));
    const verified = after.enabled === enable;
    if (!verified) warnings.push(`user ${userId} reads back ${after.enabled ? 'enabled' : 'disabled'} (${after.source})`);
    return { userId, name, enabled: after.enabled, verified, source: after.source, channels, backend: this.transport.kind, warnings };
  }
}
