/**
 * Encoders and decoders for the IPMI commands a credential change uses, byte by
 * byte as IPMI v2.0 rev 1.1 defines them. Pure functions: no I/O, no retries.
 * Decoders throw {@link MalformedResponseError} on a short response so a
 * truncated frame is never mistaken for data.
 */
import { AppCmd, LanParam, NetFn, PASSWORD_SIZE_20, PasswordOp, TransportCmd, USER_NAME_LENGTH } from '../ipmi-kcs/spec.js';
import type { IpmiRequest } from '../ipmi-kcs/transport.js';
import type { Secret } from './secret.js';

/** A response too short (or marked truncated) for the fields the command defines. */
export class MalformedResponseError extends Error {
  readonly what: string;
  constructor(what: string, got: number, need: number) {
    super(`${what}: response has ${got} data bytes, the command defines at least ${need}`);
    this.name = 'MalformedResponseError';
    this.what = what;
  }
}

function need(what: string, data: Uint8Array, n: number): void {
  if (data.length < n) throw new MalformedResponseError(what, data.length, n);
}

const byte = (data: Uint8Array, i: number): number => data[i] ?? 0;

// ---------------------------------------------------------------- §20.1 Get Device ID

export interface DeviceId {
  deviceId: number;
  deviceRevision: number;
  /** §20.1 byte 3 bit 7: 1 = device firmware, SDR update or self-initialisation in progress. */
  updateInProgress: boolean;
  firmware: string;
  /** "2.0", "1.5" — byte 5, BCD [3:0] major, [7:4] minor. */
  ipmiVersion: string;
  ipmiMajor: number;
  ipmiMinor: number;
  manufacturerId: number;
  productId: number;
}

export const getDeviceId = (): IpmiRequest => ({ netFn: NetFn.APP, cmd: AppCmd.GET_DEVICE_ID });

export function parseDeviceId(data: Uint8Array): DeviceId {
  need('Get Device ID', data, 11);
  const ver = byte(data, 4);
  const minorBcd = byte(data, 3);
  return {
    deviceId: byte(data, 0),
    deviceRevision: byte(data, 1) & 0x0f,
    updateInProgress: (byte(data, 2) & 0x80) !== 0,
    firmware: `${byte(data, 2) & 0x7f}.${(minorBcd >> 4).toString(16)}${(minorBcd & 0x0f).toString(16)}`,
    ipmiVersion: `${ver & 0x0f}.${ver >> 4}`,
    ipmiMajor: ver & 0x0f,
    ipmiMinor: ver >> 4,
    manufacturerId: (byte(data, 6) | (byte(data, 7) << 8) | (byte(data, 8) << 16)) & 0x0fffff,
    productId: byte(data, 9) | (byte(data, 10) << 8),
  };
}

// ---------------------------------------------------------------- §22.24 Get Channel Info

export interface ChannelInfo {
  channel: number;
  /** §6.5 Table 6-3 channel medium type. */
  medium: number;
  /** §6.4 Table 6-2 channel protocol type. */
  protocol: number;
  /** 0 session-less, 1 single-session, 2 multi-session, 3 session-based. */
  sessionSupport: number;
  activeSessions: number;
}

export const getChannelInfo = (channel: number): IpmiRequest => ({ netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_INFO, data: [channel & 0x0f] });

export function parseChannelInfo(data: Uint8Array): ChannelInfo {
  need('Get Channel Info', data, 4);
  return {
    channel: byte(data, 0) & 0x0f,
    medium: byte(data, 1) & 0x7f,
    protocol: byte(data, 2) & 0x1f,
    sessionSupport: byte(data, 3) >> 6,
    activeSessions: byte(data, 3) & 0x3f,
  };
}

// ---------------------------------------------------------------- §22.22 / §22.23 Channel Access

export interface ChannelAccess {
  /** 0 disabled, 1 pre-boot only, 2 always available, 3 shared. */
  accessMode: number;
  /** Raw bits [5:3] of byte 1 (PEF alerting / per-message auth / user-level auth *disable* flags), kept as read. */
  authBits: number;
  privilegeLimit: number;
}

/** §22.23 byte 2 [7:6]: 01b non-volatile, 10b present (volatile) setting. */
export type AccessStore = 'volatile' | 'non-volatile';

export const getChannelAccess = (channel: number, store: AccessStore): IpmiRequest => ({
  netFn: NetFn.APP, cmd: AppCmd.GET_CHANNEL_ACCESS, data: [channel & 0x0f, store === 'volatile' ? 0x80 : 0x40],
});

export function parseChannelAccess(data: Uint8Array): ChannelAccess {
  need('Get Channel Access', data, 2);
  return { accessMode: byte(data, 0) & 0x07, authBits: byte(data, 0) & 0x38, privilegeLimit: byte(data, 1) & 0x0f };
}

/**
 * §22.22 Set Channel Access. Writes access mode and privilege limit to one store,
 * carrying the authentication-disable bits over unchanged (they are policy this
 * agent does not own).
 */
export function setChannelAccess(channel: number, store: AccessStore, access: ChannelAccess): IpmiRequest {
  const sel = store === 'volatile' ? 0x80 : 0x40;
  return {
    netFn: NetFn.APP, cmd: AppCmd.SET_CHANNEL_ACCESS,
    data: [channel & 0x0f, sel | (access.authBits & 0x38) | (access.accessMode & 0x07), sel | (access.privilegeLimit & 0x0f)],
  };
}

// ---------------------------------------------------------------- §22.26 / §22.27 User Access

export interface UserAccess {
  /** §22.27 byte 2 [5:0]: maximum number of user IDs (1-based, includes user 1). */
  maxUsers: number;
  /** §22.27 byte 3 [7:6] (v2.0 errata): 'enabled' / 'disabled', or null when unspecified (IPMI 1.5, ipmi_sim). */
  enableStatus: 'enabled' | 'disabled' | null;
  enabledCount: number;
  /** §22.27 byte 4 [5:0]: user IDs with fixed names, including user 1. */
  fixedNameCount: number;
  /** Byte 5 bit 6: user restricted to callback ("callin" off in ipmitool's terms). */
  callbackOnly: boolean;
  linkAuth: boolean;
  ipmiMessaging: boolean;
  privilege: number;
}

export const getUserAccess = (channel: number, userId: number): IpmiRequest => ({
  netFn: NetFn.APP, cmd: AppCmd.GET_USER_ACCESS, data: [channel & 0x0f, userId & 0x3f],
});

export function parseUserAccess(data: Uint8Array): UserAccess {
  need('Get User Access', data, 4);
  const status = byte(data, 1) >> 6;
  const b3 = byte(data, 3);
  return {
    maxUsers: byte(data, 0) & 0x3f,
    enableStatus: status === 1 ? 'enabled' : status === 2 ? 'disabled' : null,
    enabledCount: byte(data, 1) & 0x3f,
    fixedNameCount: byte(data, 2) & 0x3f,
    callbackOnly: (b3 & 0x40) !== 0,
    linkAuth: (b3 & 0x20) !== 0,
    ipmiMessaging: (b3 & 0x10) !== 0,
    privilege: b3 & 0x0f,
  };
}

export interface UserChannelAccess {
  privilege: number;
  ipmiMessaging: boolean;
  linkAuth: boolean;
  callbackOnly: boolean;
}

/**
 * §22.26 Set User Access, always the 4-byte form with session limit 0: the
 * 3-byte form drew 0xC7 on some BMCs (xcat-core PR #6380) and OpenBMC rejects a
 * non-zero session limit with 0xCC. Byte 1 bit 7 set = "change bits 6:4".
 * Every field is written explicitly, never echoed from a read (a Supermicro
 * X10 stores an illegal privilege that read-modify-write would send back).
 */
export function setUserAccess(channel: number, userId: number, a: UserChannelAccess): IpmiRequest {
  const b0 = 0x80 | (a.callbackOnly ? 0x40 : 0) | (a.linkAuth ? 0x20 : 0) | (a.ipmiMessaging ? 0x10 : 0) | (channel & 0x0f);
  return { netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS, data: [b0, userId & 0x3f, a.privilege & 0x0f, 0x00] };
}

/** §22.26 with byte 1 bit 7 clear: sets the privilege limit only, leaving callback/link/messaging bits as they are. */
export function setUserPrivilege(channel: number, userId: number, privilege: number): IpmiRequest {
  return { netFn: NetFn.APP, cmd: AppCmd.SET_USER_ACCESS, data: [channel & 0x0f, userId & 0x3f, privilege & 0x0f, 0x00] };
}

// ---------------------------------------------------------------- §22.28 / §22.29 User Name

export const getUserName = (userId: number): IpmiRequest => ({ netFn: NetFn.APP, cmd: AppCmd.GET_USER_NAME, data: [userId & 0x3f] });

/** The name up to its first NUL (§22.29: 16 bytes, NUL padded). */
export function parseUserName(data: Uint8Array): string {
  need('Get User Name', data, 1);
  const raw = data.subarray(0, USER_NAME_LENGTH);
  const end = raw.indexOf(0);
  return Buffer.from(end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
}

/** §22.28 Set User Name: user id + exactly 16 name bytes, NUL padded (an empty name clears the slot). */
export function setUserName(userId: number, name: string): IpmiRequest {
  const data = new Uint8Array(1 + USER_NAME_LENGTH);
  data[0] = userId & 0x3f;
  data.set(Buffer.from(name, 'latin1').subarray(0, USER_NAME_LENGTH), 1);
  return { netFn: NetFn.APP, cmd: AppCmd.SET_USER_NAME, data };
}

// ---------------------------------------------------------------- §22.30 Set User Password

export type PasswordSize = 16 | 20;

/**
 * §22.30 Set User Password with operation 2 (set) or 3 (test). Byte 1 bit 7
 * selects the 20-byte form (IPMI 2.0 only). The returned request data holds the
 * secret: the caller wipes it with {@link wipe} once sent.
 */
export function passwordRequest(userId: number, op: typeof PasswordOp.SET_PASSWORD | typeof PasswordOp.TEST_PASSWORD, password: Secret, size: PasswordSize): IpmiRequest & { data: Uint8Array } {
  const bytes = password.copyBytes();
  try {
    if (bytes.length > size) throw new RangeError(`password is ${bytes.length} bytes; the ${size}-byte form holds at most ${size}`);
    const data = new Uint8Array(2 + size);
    data[0] = (size === 20 ? PASSWORD_SIZE_20 : 0) | (userId & 0x3f);
    data[1] = op;
    data.set(bytes, 2);
    return { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data };
  } finally {
    bytes.fill(0);
  }
}

/**
 * §22.30 operation 0/1 (disable/enable user). The spec makes the password bytes
 * optional for these, but Sun X4140 and Intel Windmill answer 0xC7 without them
 * (freeipmi workaround), so the default carries 16 zero bytes as ipmitool does;
 * `short` gives the 2-byte form for BMCs that want exactly that.
 */
export function enableRequest(userId: number, enable: boolean, short = false): IpmiRequest {
  const data = new Uint8Array(short ? 2 : 18);
  data[0] = userId & 0x3f;
  data[1] = enable ? PasswordOp.ENABLE_USER : PasswordOp.DISABLE_USER;
  return { netFn: NetFn.APP, cmd: AppCmd.SET_USER_PASSWORD, data };
}

export function wipe(req: IpmiRequest): void {
  if (req.data instanceof Uint8Array) req.data.fill(0);
}

// ---------------------------------------------------------------- §23.2 Get LAN Configuration Parameters

export const getLanConfig = (channel: number, param: number, setSelector = 0): IpmiRequest => ({
  netFn: NetFn.TRANSPORT, cmd: TransportCmd.GET_LAN_CONFIG, data: [channel & 0x0f, param, setSelector, 0],
});

/** §23.2: byte 1 is the parameter revision; the parameter data follows. */
export function parseLanParam(what: string, data: Uint8Array, length: number): Uint8Array {
  need(what, data, 1 + length);
  return data.subarray(1, 1 + length);
}

export function formatIpv4(b: Uint8Array): string | undefined {
  const s = Array.from(b).join('.');
  return s === '0.0.0.0' ? undefined : s;
}

export function formatMac(b: Uint8Array): string | undefined {
  if (b.every((x) => x === 0)) return undefined;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * IPv6 address parameters 56 (static) and 59 (dynamic), IPMI v2.0 errata 4 /
 * DCMI: set selector, source/type, 16 address bytes, prefix length, status.
 * Returns undefined for the unspecified and link-local addresses (MAAS skips fe80::).
 */
export function parseIpv6Entry(data: Uint8Array): string | undefined {
  need('Get LAN Configuration Parameters (IPv6 address)', data, 1 + 18);
  const addr = data.subarray(3, 19);
  if (addr.every((x) => x === 0)) return undefined;
  if (addr[0] === 0xfe && ((addr[1] ?? 0) & 0xc0) === 0x80) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((addr[i] ?? 0) << 8) | (addr[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export { LanParam };
