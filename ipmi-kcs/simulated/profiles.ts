/**
 * Vendor profiles of the simulated BMC: what a BMC of each kind reports and
 * which of the spec's liberties (or violations) it takes. A quirk is named
 * after the behaviour and cites where it was reported; "untested on real
 * hardware" applies to all of them, they follow published reports.
 */
import { ChannelMedium, Privilege } from '../spec.js';
import { CC } from '../completion-codes.js';

export interface DeviceIdentity {
  deviceId: number;
  /** [3:0] device revision; bit 7 "provides device SDRs" is left clear. */
  deviceRevision: number;
  firmwareMajor: number;
  /** BCD. */
  firmwareMinor: number;
  /** Get Device ID byte 5, §20.1: 0x02 = IPMI 2.0, 0x51 = IPMI 1.5. */
  ipmiVersion: 0x02 | 0x51;
  additionalSupport: number;
  /** IANA enterprise number, 20 bits. */
  manufacturerId: number;
  productId: number;
  auxFirmware?: readonly [number, number, number, number];
}

export interface Ipv6Address {
  address: string;
  prefixLength: number;
}

export interface LanConfig {
  ipAddress: string;
  /** §23.2 parameter 4: 1 static, 2 DHCP. */
  ipSource: 1 | 2;
  macAddress: string;
  subnetMask: string;
  defaultGateway: string;
  /** Present when the LAN interface speaks IPv6 (parameters 50–59). */
  ipv6?: {
    static: readonly Ipv6Address[];
    /** Addresses learned by SLAAC (source 1) or DHCPv6 (source 2). */
    dynamic: readonly (Ipv6Address & { source: 1 | 2 })[];
    staticMax: number;
    dynamicMax: number;
  };
}

export interface ChannelAccessSetting {
  /** §22.22 access mode: 0 disabled, 1 pre-boot only, 2 always available, 3 shared. */
  accessMode: number;
  pefAlertingDisabled: boolean;
  perMessageAuthDisabled: boolean;
  userLevelAuthDisabled: boolean;
  privilegeLimit: number;
}

export interface ChannelProfile {
  number: number;
  /** §6.5 Table 6-3. */
  medium: number;
  /** §6.4 Table 6-2: 1 IPMB-1.0 (also used for LAN), 5 KCS. */
  protocol: number;
  /** Get Channel Info byte 4 [7:6]: 0 session-less, 1 single, 2 multi, 3 session-based. */
  sessionSupport: 0 | 1 | 2 | 3;
  lan?: LanConfig;
  /** Session-based channels only. */
  access?: ChannelAccessSetting;
}

export interface InitialUserAccess {
  privilege: number;
  ipmiMessaging: boolean;
  linkAuth: boolean;
  callbackOnly: boolean;
}

export interface InitialUser {
  id: number;
  name: string;
  /** Plain text only in the profile; the BMC state keeps a salted hash. */
  password?: string;
  enabled: boolean;
  /** The same access on every session-based channel. */
  access?: InitialUserAccess;
}

export interface PasswordPolicy {
  minLength: number;
  /** Each of upper, lower, digit, special must appear at least once. */
  requireClasses: boolean;
  /** No two identical adjacent characters. */
  noAdjacentRepeat: boolean;
  /** Code returned when a password breaks the policy. */
  code: number;
}

export interface Quirks {
  /** Set User Password 20-byte form (§22.30 byte 1 bit 7); IPMI 1.5 BMCs treat the bit as reserved. */
  password20: boolean;
  /** Get User Access byte 2 [7:6] enable status, IPMI 2.0 only (§22.27). */
  enableStatusBits: boolean;
  /** Completion code of Get User Name on a slot with no name; undefined = 16 NUL bytes. */
  emptyNameCode?: number;
  /** Set User Name refuses a name another slot already has (code 0xCC). */
  uniqueNames: boolean;
  /** Set User Name accepts only names matching this (code 0xCC). */
  namePattern?: RegExp;
  /** Set User Access refuses a non-zero session limit (0xCC). */
  sessionLimitMustBeZero: boolean;
  /** Highest session limit accepted in Set User Access byte 4. */
  maxSessionLimit: number;
  /** Disable/enable (op 0/1) without the 16 password bytes refused with 0xC7. */
  enableNeedsPasswordBytes: boolean;
  /** Enable (op 1) refused with 0xD5 until the slot has a name and a non-null password. */
  enableNeedsCredentials: boolean;
  /** Set User Access enabling IPMI messaging with privilege limit No Access is refused (0xCC). */
  privilegeBeforeMessaging: boolean;
  /** Test Password with the other size: 0x81 per §22.30; some firmware answers otherwise. */
  testWrongSizeCode: number;
  passwordPolicy?: PasswordPolicy;
  /** Get Channel Info on a channel that does not exist. */
  missingChannelCode: number;
  /** Access modes Set Channel Access accepts; others get 0x83. */
  accessModes: readonly number[];
  /** Privilege 5 (OEM) accepted in Set User Access. */
  oemPrivilege: boolean;
  /** Get Channel Authentication Capabilities byte 2 [5:0] (auth types). */
  authTypes: number;
}

export interface BmcProfile {
  name: string;
  summary: string;
  device: DeviceIdentity;
  maxUsers: number;
  /** Slots 1..fixedNames have names that cannot be changed (Get User Access byte 3). */
  fixedNames: number;
  channels: readonly ChannelProfile[];
  users: readonly InitialUser[];
  quirks: Quirks;
}

const IPMB: ChannelProfile = { number: 0, medium: ChannelMedium.IPMB, protocol: 0x01, sessionSupport: 0 };
const SYSTEM_INTERFACE: ChannelProfile = { number: 0xf, medium: ChannelMedium.SYSTEM_INTERFACE, protocol: 0x05, sessionSupport: 0 };

const LAN_ACCESS: ChannelAccessSetting = {
  accessMode: 2, pefAlertingDisabled: false, perMessageAuthDisabled: false, userLevelAuthDisabled: false, privilegeLimit: Privilege.ADMINISTRATOR,
};

function lanChannel(number: number, lan: LanConfig, medium: number = ChannelMedium.LAN_802_3): ChannelProfile {
  return { number, medium, protocol: 0x01, sessionSupport: 2, lan, access: LAN_ACCESS };
}

const ADMIN_ACCESS: InitialUserAccess = { privilege: Privilege.ADMINISTRATOR, ipmiMessaging: true, linkAuth: true, callbackOnly: false };

const BASE_QUIRKS: Quirks = {
  password20: true,
  enableStatusBits: true,
  uniqueNames: false,
  sessionLimitMustBeZero: false,
  maxSessionLimit: 15,
  enableNeedsPasswordBytes: false,
  enableNeedsCredentials: false,
  privilegeBeforeMessaging: false,
  testWrongSizeCode: 0x81,
  missingChannelCode: CC.INVALID_DATA_FIELD,
  accessModes: [0, 1, 2, 3],
  oemPrivilege: false,
  authTypes: 0x14, // MD5 + straight password (§22.13 byte 2)
};

const IPMI20_DEVICE: DeviceIdentity = {
  deviceId: 0x20, deviceRevision: 0x01, firmwareMajor: 1, firmwareMinor: 0x00, ipmiVersion: 0x02,
  // §20.1 byte 6: chassis, IPMB event receiver/generator, FRU, SEL, SDR, sensor
  additionalSupport: 0xbf,
  manufacturerId: 7154, // IANA 7154 = IPMI Forum, a neutral id for the plain profiles
  productId: 0x0200,
};

function lan(host: number, opts: { ipv6?: boolean; mac?: number; source?: 1 | 2 } = {}): LanConfig {
  const mac = (opts.mac ?? host).toString(16).padStart(2, '0');
  const cfg: LanConfig = {
    ipAddress: `192.0.2.${host}`, // TEST-NET-1, RFC 5737
    ipSource: opts.source ?? 1,
    macAddress: `02:00:5e:10:00:${mac}`,
    subnetMask: '255.255.255.0',
    defaultGateway: '192.0.2.1',
  };
  if (opts.ipv6) {
    cfg.ipv6 = {
      static: [{ address: `2001:db8::${host.toString(16)}`, prefixLength: 64 }],
      dynamic: [{ address: `2001:db8:0:1::${host.toString(16)}`, prefixLength: 64, source: 1 }],
      staticMax: 2,
      dynamicMax: 2,
    };
  }
  return cfg;
}

const PROFILES: readonly BmcProfile[] = [
  {
    name: 'ipmi20',
    summary: 'Plain IPMI 2.0 BMC: LAN on channel 1 (IPv4 + IPv6), 16 users, user 2 "admin" administrator',
    device: IPMI20_DEVICE,
    maxUsers: 16,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(20, { ipv6: true })), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'admin', password: 'admin', enabled: true, access: ADMIN_ACCESS },
    ],
    quirks: BASE_QUIRKS,
  },
  {
    name: 'ipmi15',
    summary: 'IPMI 1.5 BMC (version 0x51): no 20-byte passwords, no enable-status bits, no IPv6',
    device: { ...IPMI20_DEVICE, ipmiVersion: 0x51, firmwareMajor: 0, firmwareMinor: 0x15, productId: 0x0150 },
    maxUsers: 10,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(15)), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'admin', password: 'admin', enabled: true, access: ADMIN_ACCESS },
    ],
    // §22.30: the size bit is reserved on 1.5 BMCs, which refuse it as an invalid field.
    quirks: { ...BASE_QUIRKS, password20: false, enableStatusBits: false },
  },
  {
    name: 'lan-channel-2',
    summary: 'IPMI 2.0 BMC whose only LAN channel is 2',
    device: { ...IPMI20_DEVICE, productId: 0x0202 },
    maxUsers: 16,
    fixedNames: 1,
    channels: [IPMB, lanChannel(2, lan(22)), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'admin', password: 'admin', enabled: true, access: ADMIN_ACCESS },
    ],
    quirks: BASE_QUIRKS,
  },
  {
    name: 'lan-channel-8',
    summary: 'IPMI 2.0 BMC whose only LAN channel is 8 (dedicated NIC numbering)',
    device: { ...IPMI20_DEVICE, productId: 0x0208 },
    maxUsers: 16,
    fixedNames: 1,
    channels: [IPMB, lanChannel(8, lan(28, { source: 2 })), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'admin', password: 'admin', enabled: true, access: ADMIN_ACCESS },
    ],
    quirks: BASE_QUIRKS,
  },
  {
    name: 'dual-lan',
    summary: 'IPMI 2.0 BMC with two LAN channels, 1 (shared NIC) and 8 (dedicated NIC); user access is per channel',
    device: { ...IPMI20_DEVICE, productId: 0x0218 },
    maxUsers: 16,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(31, { ipv6: true })), lanChannel(8, lan(38, { ipv6: true })), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'admin', password: 'admin', enabled: true, access: ADMIN_ACCESS },
    ],
    // ipmi_sim answers 0xCB for a channel it does not have (research/ipmi.md §6.3).
    quirks: { ...BASE_QUIRKS, missingChannelCode: CC.NOT_PRESENT },
  },
  {
    name: 'fixed-admin',
    summary: 'Supermicro-like: slot 2 "ADMIN" has a fixed name, 10 users, privilege must precede IPMI messaging',
    device: { ...IPMI20_DEVICE, manufacturerId: 10876, productId: 0x0907, firmwareMajor: 3, firmwareMinor: 0x88 },
    maxUsers: 10,
    fixedNames: 2,
    channels: [IPMB, lanChannel(1, lan(40)), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'ADMIN', password: 'ADMIN', enabled: true, access: ADMIN_ACCESS },
    ],
    // MAAS commits the LAN privilege before enabling IPMI messages because Supermicro
    // refuses the reverse (canonical/maas bmc_config.py comment); the code is a guess.
    quirks: { ...BASE_QUIRKS, privilegeBeforeMessaging: true },
  },
  {
    name: 'password-policy',
    summary: 'Lenovo/Huawei/DGX-like password policy: ≥13 chars, all four classes, no adjacent repeats, else 0xCC',
    device: { ...IPMI20_DEVICE, manufacturerId: 19046, productId: 0x0c13 },
    maxUsers: 12,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(50, { ipv6: true })), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'USERID', password: 'PASSW0RD-Initial', enabled: true, access: ADMIN_ACCESS },
    ],
    // MAAS LP:1621175/1758760 (Huawei/Lenovo), LP:2130621 (NVIDIA DGX: ≥13 + special);
    // a policy failure is 0xCC as in phosphor-host-ipmid's PAM path (research/ipmi.md §5).
    quirks: {
      ...BASE_QUIRKS,
      passwordPolicy: { minLength: 13, requireClasses: true, noAdjacentRepeat: true, code: CC.INVALID_DATA_FIELD },
    },
  },
  {
    name: 'openbmc-old',
    summary: 'Early OpenBMC: LAN reported as "Other LAN" (0x06), 15 users, 0xC9 for empty names, unique names, session limit 0 only',
    device: { ...IPMI20_DEVICE, manufacturerId: 49871, productId: 0x0001, firmwareMajor: 2, firmwareMinor: 0x06 },
    maxUsers: 15,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(60, { ipv6: true }), ChannelMedium.OTHER_LAN), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'root', password: '0penBmc', enabled: true, access: ADMIN_ACCESS },
    ],
    // phosphor-host-ipmid usercommands.cpp (old): empty slot → 0xC9, duplicate name → 0xCC,
    // names [a-zA-Z_][a-zA-Z_0-9]*, session limit ≠ 0 → 0xCC; Test Password with the other
    // size → 0xC7 (phosphor-host-ipmid#204). OpenBMC authenticates over RMCP+ only.
    quirks: {
      ...BASE_QUIRKS,
      emptyNameCode: CC.PARAMETER_OUT_OF_RANGE,
      uniqueNames: true,
      namePattern: /^[a-zA-Z_][a-zA-Z_0-9]*$/,
      sessionLimitMustBeZero: true,
      testWrongSizeCode: CC.REQUEST_DATA_LENGTH_INVALID,
      accessModes: [0, 2],
      authTypes: 0x00,
    },
  },
  {
    name: 'dell-like',
    summary: 'Dell R610/R710-like: "root" in slot 2, enable refused with 0xD5 until the slot has a name and password',
    device: { ...IPMI20_DEVICE, manufacturerId: 674, productId: 0x0100, firmwareMajor: 2, firmwareMinor: 0x92 },
    maxUsers: 16,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(70)), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'root', password: 'calvin', enabled: true, access: ADMIN_ACCESS },
    ],
    // research/ipmi.md §5 "Enable order": R610/R710 0xD5 until a non-null password; R420 name first.
    quirks: { ...BASE_QUIRKS, enableNeedsCredentials: true },
  },
  {
    name: 'intel-like',
    summary: 'Intel S5500WBV/Windmill-like: LAN channels 1 and 2, 0xCC for empty names and duplicates, enable/disable need the password bytes',
    device: { ...IPMI20_DEVICE, manufacturerId: 343, productId: 0x003e, firmwareMajor: 1, firmwareMinor: 0x17 },
    maxUsers: 15,
    fixedNames: 1,
    channels: [IPMB, lanChannel(1, lan(80, { ipv6: true })), lanChannel(2, lan(82)), SYSTEM_INTERFACE],
    users: [
      { id: 1, name: '', enabled: false },
      { id: 2, name: 'root', password: 'superuser', enabled: true, access: ADMIN_ACCESS },
    ],
    // research/ipmi.md §5: S5500WBV answers Get User Name on an unset slot and a duplicate
    // Set User Name with 0xCC; Windmill wants password bytes even for enable/disable (0xC7).
    quirks: { ...BASE_QUIRKS, emptyNameCode: CC.INVALID_DATA_FIELD, uniqueNames: true, enableNeedsPasswordBytes: true },
  },
];

export const DEFAULT_PROFILE = 'ipmi20';

export function listProfiles(): string[] {
  return PROFILES.map((p) => p.name);
}

export function getProfile(name: string = DEFAULT_PROFILE): BmcProfile {
  const p = PROFILES.find((x) => x.name === name);
  if (!p) throw new Error(`unknown simulated BMC profile "${name}" (known: ${listProfiles().join(', ')})`);
  return p;
}

export function lanChannels(profile: BmcProfile): number[] {
  return profile.channels.filter((c) => c.lan).map((c) => c.number);
}
