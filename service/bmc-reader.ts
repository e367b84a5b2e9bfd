/**
 * Reads what a credential change needs to know about the BMC, lazily and with
 * a per-operation cache so a fresh change issues each read once.
 *
 * A change's reads are asked for by the planner (plan.ts), one {@link Need} at
 * a time, and land in a {@link ChangeState}: the snapshot the plan is computed
 * from. The reader never decides anything; it only reads what it is asked.
 */
import { CC } from '../ipmi-kcs/completion-codes.js';
import { IpmiCompletionCodeError } from '../ipmi-kcs/errors.js';
import { ANONYMOUS_USER_ID, ChannelMedium, LanParam, PasswordOp } from '../ipmi-kcs/spec.js';
import type { BmcClient } from './bmc-client.js';
import {
  formatIpv4, formatMac, getChannelAccess, getChannelInfo, getDeviceId, getLanConfig, getUserAccess, getUserName,
  parseChannelAccess, parseChannelInfo, parseDeviceId, parseIpv6Entry, parseLanParam, parseUserAccess, parseUserName, passwordRequest, wipe,
  type AccessStore, type ChannelAccess, type ChannelInfo, type DeviceId, type PasswordSize, type UserAccess,
} from './ipmi-commands.js';
import type { Logger } from './logger.js';
import { generatePassword } from './password-generator.js';
import type { Secret } from './secret.js';

/**
 * Channels scanned for LAN media: 1–11. Channel 0 is the primary IPMB, 0xC–0xD
 * are reserved, 0xE means "current" and 0xF is the system interface (§6.3
 * Table 6-1); freeipmi scans 0..11 too (IPMI_NUM_CHANNELS 12).
 */
export const SCANNED_CHANNELS: readonly number[] = Object.freeze([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

/**
 * Completion codes meaning "no such channel" from Get Channel Info: 0xCB not
 * present (ipmi_sim), 0xCC invalid data field, 0xC9 out of range, 0xD5 / 0x82
 * on some firmware for unimplemented channel numbers.
 */
const NO_CHANNEL = [CC.NOT_PRESENT, CC.INVALID_DATA_FIELD, CC.PARAMETER_OUT_OF_RANGE, CC.NOT_SUPPORTED_IN_PRESENT_STATE, 0x82];

/**
 * Get User Name on a never-named slot: 0xCC (Sun X4140, Inventec, Intel S5500WBV,
 * ipmi_sim for user 1), 0xC9 (OpenBMC), 0xCB — all mean "empty", as ipmitool treats 0xCC.
 */
const EMPTY_NAME = [CC.INVALID_DATA_FIELD, CC.PARAMETER_OUT_OF_RANGE, CC.NOT_PRESENT];

const INTEL_LAN_QUIRK = Object.freeze({ manufacturerId: 343, productId: 0x1b, channel: 7 });

/** Names some BMCs show for an unused slot (HP, per MAAS `_pick_user_number`). */
const EMPTY_NAME_PLACEHOLDERS = new Set(['(Empty User)']);

export interface LanChannel extends ChannelInfo {
  /** 802.3 LAN, or "Other LAN", which OpenBMC before OP940.01 reports for its LAN channel (xCAT). */
  mediumName: '802.3 LAN' | 'other LAN';
}

export interface UserTableLimits {
  maxUsers: number;
  fixedNameCount: number;
  enabledCount: number;
}

export interface LanAddress {
  channel?: number;
  address?: string;
  v6address?: string;
  mac?: string;
}

/** Test Password (§22.30 op 3) answers meaning "not implemented here" rather than "wrong password". */
export const TEST_UNSUPPORTED: readonly number[] = [CC.INVALID_COMMAND, CC.INVALID_DATA_FIELD, CC.NOT_SUPPORTED_IN_PRESENT_STATE, CC.SUBFUNCTION_DISABLED, CC.REQUEST_DATA_LENGTH_INVALID];
/** Test Password: the password differs (0x80 for the 16-byte form, 0x81 for the 20-byte form). */
export const TEST_MISMATCH: readonly number[] = [0x80, 0x81];

/** What Test Password said before a change: whether the slot already held the password, and whether the test can be believed. */
export interface PasswordBefore {
  before: 'matched' | 'differed' | 'unknown';
  /** The BMC also accepted a random wrong password (ipmi_sim does): a match proves nothing. */
  unreliable: boolean;
}

/**
 * The BMC state a credential change is planned from: what has been read so
 * far. A field left undefined has not been read; a map lacks what was not read.
 */
export interface ChangeState {
  device?: DeviceId;
  /** LAN channels among those the request names (all of 1–11 when it names none), in channel order. */
  lan?: LanChannel[];
  /** Every LAN channel of 1–11: read only when a rename must be judged on channels the request did not name. */
  allLan?: LanChannel[];
  limits?: UserTableLimits;
  /** Names of slots 2..maxUsers ('' = empty), in slot order. */
  names?: ReadonlyMap<number, string>;
  /** Get User Access by `accessKey(channel, userId)`. */
  userAccess: Map<string, UserAccess>;
  /** Get Channel Access by `channelAccessKey(channel, store)`; null where the channel does not report it. */
  channelAccess: Map<string, ChannelAccess | null>;
  lanAddress?: LanAddress;
  /** Test Password before the write: read only for a given password on a slot that already holds the name. */
  passwordBefore?: PasswordBefore;
}

export const accessKey = (channel: number, userId: number): string => `${channel}:${userId}`;
export const channelAccessKey = (channel: number, store: AccessStore): string => `${channel}:${store}`;

export function emptyChangeState(): ChangeState {
  return { userAccess: new Map(), channelAccess: new Map() };
}

/** One read the planner asks for, in the order it needs them (which is the order they are sent). */
export type Need =
  /** §20.1 Get Device ID. */
  | { read: 'device' }
  /** §22.24 Get Channel Info on `channels` (default 1–11). */
  | { read: 'lan-channels'; channels?: readonly number[] }
  /** §22.24 on all of 1–11 (channels already read are not read again). */
  | { read: 'all-lan-channels' }
  /** §22.27 on user 1 (or 2): slot count and fixed-name count. */
  | { read: 'limits'; channel: number }
  /** §22.29 Get User Name for slots 2..maxUsers. */
  | { read: 'user-names'; maxUsers: number }
  /** §22.27 Get User Access of one user on each of `channels`. */
  | { read: 'user-access'; userId: number; channels: readonly number[] }
  /** §22.23 Get Channel Access, in this order. */
  | { read: 'channel-access'; reads: ReadonlyArray<{ channel: number; store: AccessStore }> }
  /** §23.2 the BMC's LAN address (best effort). */
  | { read: 'lan-address'; channels: readonly number[] }
  /** §22.30 op 3 with the request's password, plus a control test with a random wrong one on a match. */
  | { read: 'password-test'; userId: number; size: PasswordSize };

/** What some reads need besides the BMC: the request's password for Test Password, and randomness for its control. */
export interface FillContext {
  password?: Secret;
  randomInt?: (max: number) => number;
}

/**
 * What a BMC's firmware fixes, kept across one service's changes so that a
 * daemon's later changes do not scan channels 1–11 again: the Get Device ID
 * answer (§20.1) and the Get Channel Info answers (§22.24) read under it.
 *
 * Every change still sends Get Device ID, and the channel answers are used
 * only while it reads back byte for byte as when they were read: a firmware
 * update (firmware and auxiliary revisions, §20.1 bytes 4–5 and 13–16), an
 * update in progress (byte 4 bit 7) or another BMC behind the interface all
 * change it, and then every channel is read again. The service also drops
 * them when a change fails (credential-service.ts), so a change that went
 * wrong never leaves a stale layout for the next. The active-session count in
 * a cached answer is stale by design: only `bmc.get_info` reports it, and it
 * reads without this cache.
 */
export class BmcFacts {
  #device: string | undefined;
  #channels = new Map<number, ChannelInfo | null>();

  /** Takes this change's Get Device ID answer: keeps the channels when it is the one they were read under, else forgets them. */
  confirm(deviceData: Uint8Array): void {
    const key = Buffer.from(deviceData.buffer, deviceData.byteOffset, deviceData.byteLength).toString('hex');
    if (key === this.#device) return;
    this.#device = key;
    this.#channels.clear();
  }

  /** The kept answer for `channel` (null: no such channel), or undefined when it was not read under this Device ID. */
  channel(channel: number): ChannelInfo | null | undefined {
    return this.#channels.get(channel);
  }

  remember(channel: number, info: ChannelInfo | null): void {
    if (this.#device !== undefined) this.#channels.set(channel, info);
  }

  clear(): void {
    this.#device = undefined;
    this.#channels.clear();
  }
}

export class BmcReader {
  readonly client: BmcClient;
  #logger: Logger;
  /** Set once this operation's Get Device ID has confirmed them. */
  #facts: BmcFacts | undefined;
  #factsConfirmed = false;
  #device?: Promise<DeviceId>;
  #channelInfo = new Map<number, Promise<ChannelInfo | null>>();
  #names = new Map<number, Promise<string>>();
  #access = new Map<string, Promise<UserAccess>>();

  /** `facts`: the service's {@link BmcFacts}, used once this reader's Get Device ID has confirmed them. */
  constructor(client: BmcClient, logger: Logger, facts?: BmcFacts) {
    this.client = client;
    this.#logger = logger;
    this.#facts = facts;
  }

  /** §20.1 Get Device ID. */
  device(): Promise<DeviceId> {
    this.#device ??= this.client.data(getDeviceId(), { what: 'Get Device ID', minLength: 11 }).then((data) => {
      const dev = parseDeviceId(data);
      if (this.#facts) {
        this.#facts.confirm(data);
        this.#factsConfirmed = true;
      }
      return dev;
    });
    return this.#device;
  }

  /** §22.24 Get Channel Info; null when the channel does not exist. */
  channelInfo(channel: number): Promise<ChannelInfo | null> {
    let p = this.#channelInfo.get(channel);
    if (!p) {
      const facts = this.#factsConfirmed ? this.#facts : undefined;
      const kept = facts?.channel(channel);
      if (kept !== undefined) {
        p = Promise.resolve(kept);
      } else {
        p = this.client.call(getChannelInfo(channel), { what: `Get Channel Info (channel ${channel})`, accept: NO_CHANNEL, minLength: 4 })
          .then((rsp) => {
            const info = rsp.completionCode === CC.OK ? parseChannelInfo(rsp.data) : null;
            facts?.remember(channel, info);
            return info;
          });
      }
      this.#channelInfo.set(channel, p);
    }
    return p;
  }

  /** LAN channels among `channels` (default: all of 1–11), in channel order. */
  async lanChannels(channels: readonly number[] = SCANNED_CHANNELS): Promise<LanChannel[]> {
    const out: LanChannel[] = [];
    for (const ch of channels) {
      const info = await this.channelInfo(ch);
      if (!info) continue;
      if (info.medium === ChannelMedium.LAN_802_3) out.push({ ...info, channel: ch, mediumName: '802.3 LAN' });
      else if (info.medium === ChannelMedium.OTHER_LAN) out.push({ ...info, channel: ch, mediumName: 'other LAN' });
    }
    if (out.length === 0 && channels.includes(INTEL_LAN_QUIRK.channel)) {
      // freeipmi (libfreeipmi/util/ipmi-channel-util.c): Intel (IANA 343) product 0x1B
      // has its LAN on channel 7 whatever Get Channel Info says. Untested on real hardware.
      const dev = await this.device();
      if (dev.manufacturerId === INTEL_LAN_QUIRK.manufacturerId && dev.productId === INTEL_LAN_QUIRK.productId) {
        const info = await this.channelInfo(INTEL_LAN_QUIRK.channel);
        out.push({ channel: INTEL_LAN_QUIRK.channel, medium: ChannelMedium.LAN_802_3, protocol: info?.protocol ?? 1, sessionSupport: info?.sessionSupport ?? 2, activeSessions: info?.activeSessions ?? 0, mediumName: '802.3 LAN' });
      }
    }
    return out;
  }

  /** §22.27 Get User Access for one user on one channel. */
  userAccess(channel: number, userId: number): Promise<UserAccess> {
    const key = `${channel}:${userId}`;
    let p = this.#access.get(key);
    if (!p) {
      p = this.client.data(getUserAccess(channel, userId), { what: `Get User Access (channel ${channel}, user ${userId})`, minLength: 4 }).then(parseUserAccess);
      this.#access.set(key, p);
    }
    return p;
  }

  /**
   * Slot count and fixed-name count (§22.27 bytes 1 and 3, the same for every user
   * id), read on user 1; a BMC that refuses user 1 is asked about user 2.
   */
  async limits(channel: number): Promise<UserTableLimits> {
    let a: UserAccess;
    try {
      a = await this.userAccess(channel, ANONYMOUS_USER_ID);
    } catch (err) {
      if (!(err instanceof IpmiCompletionCodeError)) throw err;
      a = await this.userAccess(channel, ANONYMOUS_USER_ID + 1);
    }
    return { maxUsers: a.maxUsers, fixedNameCount: a.fixedNameCount, enabledCount: a.enabledCount };
  }

  /** §22.29 Get User Name; '' for an empty slot. */
  userName(userId: number): Promise<string> {
    let p = this.#names.get(userId);
    if (!p) {
      p = this.client.call(getUserName(userId), { what: `Get User Name (user ${userId})`, accept: EMPTY_NAME, minLength: 16 })
        .then((rsp) => {
          if (rsp.completionCode !== CC.OK) return '';
          const name = parseUserName(rsp.data);
          return EMPTY_NAME_PLACEHOLDERS.has(name) ? '' : name;
        });
      this.#names.set(userId, p);
    }
    return p;
  }

  /** §22.23 Get Channel Access; null when the channel does not support it (0x82, 0xC1, 0xCC). */
  async channelAccess(channel: number, store: AccessStore): Promise<ChannelAccess | null> {
    const rsp = await this.client.call(getChannelAccess(channel, store), {
      what: `Get Channel Access (channel ${channel}, ${store})`, accept: [0x82, CC.INVALID_COMMAND, CC.INVALID_DATA_FIELD], minLength: 2,
    });
    return rsp.completionCode === CC.OK ? parseChannelAccess(rsp.data) : null;
  }

  /**
   * The BMC's LAN identity for the conductor's out-of-band check (§23.2 params 3
   * and 5, and IPv6 param 59 then 56). Best effort: a BMC without the parameter
   * (0x80) or with a failing read leaves the field out; never fails a change.
   */
  async lanAddress(channels: readonly number[]): Promise<LanAddress> {
    const param = async (ch: number, p: number, len: number, set = 0): Promise<Uint8Array | undefined> => {
      try {
        const rsp = await this.client.call(getLanConfig(ch, p, set), { what: `Get LAN Configuration Parameter ${p} (channel ${ch})`, accept: [0x80, CC.INVALID_COMMAND, CC.INVALID_DATA_FIELD, CC.PARAMETER_OUT_OF_RANGE] });
        if (rsp.completionCode !== CC.OK) return undefined;
        return Uint8Array.from(parseLanParam(`LAN parameter ${p}`, rsp.data, len));
      } catch (err) {
        this.#logger.debug('LAN parameter read failed; leaving it out', { channel: ch, param: p, error: err instanceof Error ? err.message : String(err) });
        return undefined;
      }
    };
    const out: LanAddress = {};
    for (const ch of channels) {
      const ip = await param(ch, LanParam.IP_ADDRESS, 4);
      const address = ip && formatIpv4(ip);
      if (address) {
        out.channel = ch;
        out.address = address;
        break;
      }
    }
    const ch = out.channel ?? channels[0];
    if (ch === undefined) return out;
    out.channel = ch;
    const mac = await param(ch, LanParam.MAC_ADDRESS, 6);
    if (mac) out.mac = formatMac(mac);
    for (const p of [LanParam.IPV6_DYNAMIC_ADDRESSES, LanParam.IPV6_STATIC_ADDRESSES]) {
      const entry = await param(ch, p, 19);
      const v6 = entry && parseIpv6Entry(Uint8Array.of(0, ...entry));
      if (v6) {
        out.v6address = v6;
        break;
      }
      if (!entry) break; // parameter unsupported: the BMC has no IPv6 support to ask about
    }
    for (const k of Object.keys(out) as (keyof LanAddress)[]) if (out[k] === undefined) delete out[k];
    return out;
  }

  /**
   * Test Password (§22.30 op 3) without failing on a "no": 'match' (0x00),
   * 'differs' (0x80/0x81) or 'unknown' (not implemented here), with the code.
   */
  async testPassword(userId: number, secret: Secret, size: PasswordSize): Promise<{ outcome: 'match' | 'differs' | 'unknown'; completionCode: number }> {
    const req = passwordRequest(userId, PasswordOp.TEST_PASSWORD, secret, size);
    try {
      const rsp = await this.client.call(req, { what: `Test Password (user ${userId})`, accept: [...TEST_MISMATCH, ...TEST_UNSUPPORTED] });
      const cc = rsp.completionCode;
      return { outcome: cc === CC.OK ? 'match' : TEST_MISMATCH.includes(cc) ? 'differs' : 'unknown', completionCode: cc };
    } finally {
      wipe(req);
    }
  }

  /**
   * Whether the slot already holds `secret`, by Test Password — and, when that
   * says "match", a second test with a random wrong password as a control:
   * some BMCs (ipmi_sim) answer 0x00 to any test, and then a match means
   * nothing. The correct-password test that follows in verification resets any
   * failed-attempt counter a PAM-based BMC keeps.
   */
  async passwordBefore(userId: number, secret: Secret, size: PasswordSize, randomInt?: (max: number) => number): Promise<PasswordBefore> {
    const first = (await this.testPassword(userId, secret, size)).outcome;
    if (first !== 'match') return { before: first === 'differs' ? 'differed' : 'unknown', unreliable: false };
    const decoy = generatePassword(0, randomInt ? { randomInt } : {});
    try {
      const control = (await this.testPassword(userId, decoy, size)).outcome;
      return control === 'differs' ? { before: 'matched', unreliable: false } : { before: 'unknown', unreliable: control === 'match' };
    } finally {
      decoy.dispose();
    }
  }

  /** Reads what `need` asks for into `state`; what `state` already holds is not read again. */
  async fill(state: ChangeState, need: Need, ctx: FillContext = {}): Promise<void> {
    switch (need.read) {
      case 'device':
        state.device = await this.device();
        return;
      case 'lan-channels':
        state.lan = await this.lanChannels(need.channels);
        return;
      case 'all-lan-channels':
        state.allLan = await this.lanChannels();
        return;
      case 'limits':
        state.limits = await this.limits(need.channel);
        return;
      case 'user-names': {
        const names = new Map<number, string>();
        for (let id = 2; id <= need.maxUsers; id++) names.set(id, await this.userName(id));
        state.names = names;
        return;
      }
      case 'user-access':
        for (const ch of need.channels) {
          const key = accessKey(ch, need.userId);
          if (!state.userAccess.has(key)) state.userAccess.set(key, await this.userAccess(ch, need.userId));
        }
        return;
      case 'channel-access':
        for (const { channel, store } of need.reads) {
          const key = channelAccessKey(channel, store);
          if (!state.channelAccess.has(key)) state.channelAccess.set(key, await this.channelAccess(channel, store));
        }
        return;
      case 'lan-address':
        state.lanAddress = await this.lanAddress(need.channels);
        return;
      case 'password-test':
        if (!ctx.password) throw new TypeError('a password test needs the request\'s password');
        state.passwordBefore = await this.passwordBefore(need.userId, ctx.password, need.size, ctx.randomInt);
        return;
    }
  }

  /** Drops cached user names and access (after writes). Device and channel info stay. */
  forgetUsers(): void {
    this.#names.clear();
    this.#access.clear();
  }
}
