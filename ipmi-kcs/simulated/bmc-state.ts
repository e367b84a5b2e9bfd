/**
 * The simulated BMC's mutable state: the user table (names, passwords, enable
 * flags, per-channel access, §22.26–22.30) and channel access (volatile and
 * non-volatile, §22.22). Plain data so it can be cloned, snapshotted as the
 * "last non-volatile state" and written to a state file.
 */
import type { BmcProfile, ChannelAccessSetting } from './profiles.js';
import { hashPassword, padPassword, type KdfCost, type StoredPassword } from './password-hash.js';
import { Privilege } from '../spec.js';

export interface UserChannelAccess {
  /** §22.26 byte 1 bit 6. */
  callbackOnly: boolean;
  /** Bit 5. */
  linkAuth: boolean;
  /** Bit 4. */
  ipmiMessaging: boolean;
  /** Byte 3 [3:0]; 0xF = no access. */
  privilege: number;
  /** Byte 4 [3:0]; 0 = limited only by the channel. */
  sessionLimit: number;
}

/** Get User Access byte 2 [7:6], §22.27: 0 unspecified, 1 enabled, 2 disabled (set via Set User Password). */
export type EnableStatus = 0 | 1 | 2;

export interface UserSlot {
  id: number;
  /** The 16 bytes as last set (§22.28), NUL-padded. */
  name: number[];
  enabled: boolean;
  enableStatus: EnableStatus;
  password: StoredPassword;
  /** Keyed by session-based channel number. */
  access: Record<number, UserChannelAccess>;
}

export interface ChannelAccessState {
  volatile: ChannelAccessSetting;
  nonVolatile: ChannelAccessSetting;
}

export interface BmcState {
  /** Index = user id; index 0 unused. */
  users: UserSlot[];
  channelAccess: Record<number, ChannelAccessState>;
}

export const NO_ACCESS: Readonly<UserChannelAccess> = Object.freeze({
  callbackOnly: false, linkAuth: false, ipmiMessaging: false, privilege: Privilege.NO_ACCESS, sessionLimit: 0,
});

const NULL_PASSWORD_16 = new Uint8Array(16);
const nullHashes = new Map<string, StoredPassword>();

/** Every empty slot holds the null password; one hash of it serves them all (it is no secret). */
function nullPassword(cost: KdfCost): StoredPassword {
  const key = `${cost.N}:${cost.r}:${cost.p}`;
  let h = nullHashes.get(key);
  if (!h) {
    h = hashPassword(NULL_PASSWORD_16, 16, cost);
    nullHashes.set(key, h);
  }
  return structuredClone(h);
}

function nameBytes(name: string): number[] {
  const b = Buffer.from(name, 'latin1');
  if (b.length > 16) throw new Error(`user name "${name}" longer than 16 bytes`);
  return Array.from(padPassword(b, 16));
}

/** The state a BMC of this profile has fresh from the factory. */
export function initialState(profile: BmcProfile, cost: KdfCost): BmcState {
  const sessionChannels = profile.channels.filter((c) => c.access).map((c) => c.number);
  const users: UserSlot[] = [];
  for (let id = 1; id <= profile.maxUsers; id++) {
    const init = profile.users.find((u) => u.id === id);
    const access: Record<number, UserChannelAccess> = {};
    for (const ch of sessionChannels) {
      access[ch] = init?.access ? { ...init.access, sessionLimit: 0 } : { ...NO_ACCESS };
    }
    users[id] = {
      id,
      name: nameBytes(init?.name ?? ''),
      enabled: init?.enabled ?? false,
      enableStatus: init ? (init.enabled ? 1 : 2) : 0,
      password: init?.password ? hashPassword(padPassword(init.password, 16), 16, cost) : nullPassword(cost),
      access,
    };
  }
  const channelAccess: Record<number, ChannelAccessState> = {};
  for (const c of profile.channels) {
    if (c.access) channelAccess[c.number] = { volatile: { ...c.access }, nonVolatile: { ...c.access } };
  }
  return { users, channelAccess };
}

export function cloneState(s: BmcState): BmcState {
  return structuredClone(s);
}

export function nameText(name: readonly number[]): string {
  const end = name.indexOf(0);
  return Buffer.from(end < 0 ? name : name.slice(0, end)).toString('latin1');
}
