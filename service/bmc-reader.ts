/**
 * Reads what a credential change needs to know about the BMC, lazily and with
 * a per-operation cache so a fresh change issues each read once.
 */
import { CC } from '../ipmi-kcs/completion-codes.js';
import { IpmiCompletionCodeError } from '../ipmi-kcs/errors.js';
import { ANONYMOUS_USER_ID, ChannelMedium, LanParam } from '../ipmi-kcs/spec.js';
import type { BmcClient } from './bmc-client.js';
import {
  formatIpv4, formatMac, getChannelAccess, getChannelInfo, getDeviceId, getLanConfig, getUserAccess, getUserName,
  parseChannelAccess, parseChannelInfo, parseDeviceId, parseIpv6Entry, parseLanParam, parseUserAccess, parseUserName,
  type AccessStore, type ChannelAccess, type ChannelInfo, type DeviceId, type UserAccess,
} from './ipmi-commands.js';
import type { Logger } from './logger.js';

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

export class BmcReader {
  readonly client: BmcClient;
  #logger: Logger;
  #device?: Promise<DeviceId>;
  #channelInfo = new Map<number, Promise<ChannelInfo | null>>();
  #names = new Map<number, Promise<string>>();
  #access = new Map<string, Promise<UserAccess>>();

  constructor(client: BmcClient, logger: Logger) {
    this.client = client;
    this.#logger = logger;
  }

  /** §20.1 Get Device ID. */
  device(): Promise<DeviceId> {
    this.#device ??= this.client.data(getDeviceId(), { what: 'Get Device ID', minLength: 11 }).then(parseDeviceId);
    return this.#device;
  }

  /** §22.24 Get Channel Info; null when the channel does not exist. */
  channelInfo(channel: number): Promise<ChannelInfo | null> {
    let p = this.#channelInfo.get(channel);
    if (!p) {
      p = this.client.call(getChannelInfo(channel), { what: `Get Channel Info (channel ${channel})`, accept: NO_CHANNEL, minLength: 4 })
        .then((rsp) => (rsp.completionCode === CC.OK ? parseChannelInfo(rsp.data) : null));
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

  /** Drops cached user names and access (after writes). Device and channel info stay. */
  forgetUsers(): void {
    this.#names.clear();
    this.#access.clear();
  }
}
