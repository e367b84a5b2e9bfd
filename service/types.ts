/** Public request/result shapes of the credential service. None of them holds a password except as a {@link Secret}. */
import { Privilege } from '../ipmi-kcs/spec.js';
import type { Secret } from './secret.js';

export type PrivilegeName = 'administrator' | 'operator' | 'user';

/** §6.8 privilege levels a request may ask for. */
export const PRIVILEGE_LEVEL: Readonly<Record<PrivilegeName, number>> = Object.freeze({
  administrator: Privilege.ADMINISTRATOR,
  operator: Privilege.OPERATOR,
  user: Privilege.USER,
});

/** A privilege limit as read from a BMC, named (Table 22-28), or `reserved-0xN`. */
export function privilegeLabel(level: number): string {
  switch (level) {
    case Privilege.CALLBACK: return 'callback';
    case Privilege.USER: return 'user';
    case Privilege.OPERATOR: return 'operator';
    case Privilege.ADMINISTRATOR: return 'administrator';
    case Privilege.OEM: return 'oem';
    case Privilege.NO_ACCESS: return 'no-access';
    default: return `reserved-0x${level.toString(16)}`;
  }
}

export interface SetCredentialsRequest {
  /** 1–16 ASCII letters, digits, `_ . -` (credential-contract.ts; §22.28 holds 16 bytes). */
  username: string;
  /** Exactly one of `password` / `generate`. 1–20 bytes of printable ASCII; >16 needs IPMI 2.0 (§22.30). */
  password?: Secret;
  generate?: boolean;
  /** Default 'administrator'; by name or §6.8 level (2 user, 3 operator, 4 administrator). */
  privilege?: PrivilegeName | 2 | 3 | 4;
  /** Explicit user id (2..max users). */
  slot?: number;
  /** LAN channels to grant access on; default every LAN channel discovered. */
  channels?: number[];
  /** Opt-in: set channel access mode "always available" and raise the channel privilege limit where they block login. */
  enableChannelAccess?: boolean;
  /** Opt-in: allow reusing a vendor fixed-name slot (§22.27 byte 3) whose name equals `username`. */
  allowFixedSlot?: boolean;
  /**
   * Opt-in: allow a change that leaves a LAN channel without an enabled
   * administrator it had (demoting, renaming or reusing the last one's slot).
   */
  allowLockout?: boolean;
}

export interface Verification {
  /**
   * Test Password (§22.30 op 3) in the size the password was set with:
   * 'passed' = 0x00; 'unsupported' = the BMC does not implement it (0xC1, 0xCC, 0xD5, 0xD6, 0xC7).
   * 'unreliable' = 0x00, but this BMC also answered 0x00 to a wrong password (ipmi_sim does), so it proves nothing.
   * A mismatch (0x80/0x81) never reaches a result: it fails the change.
   * The out-of-band login remains the proof.
   */
  passwordTest: 'passed' | 'unsupported' | 'unreliable';
  /** Completion code when 'unsupported'. */
  passwordTestCode?: number;
  /** Get User Name read back equals the username. */
  name: boolean;
  /** The slot reads back enabled. */
  enabled: boolean;
  /** How `enabled` was read: the §22.27 enable-status bits, or inferred from IPMI messaging where the BMC leaves them unspecified (IPMI 1.5, ipmi_sim). */
  enabledSource: 'status' | 'ipmi-messaging';
  /** Per LAN channel: privilege, IPMI messaging, link auth and callin read back as set. */
  access: Record<number, boolean>;
  /** Per LAN channel, only when channel access was checked: mode always-available/shared and privilege limit ≥ the user's. */
  channelAccess?: Record<number, boolean>;
}

export interface BmcIdentity {
  ipmiVersion: string;
  manufacturerId: number;
  productId: number;
  firmware: string;
  /** LAN channel the address was read from. */
  lanChannel?: number;
  address?: string;
  v6address?: string;
  mac?: string;
}

export interface SetCredentialsResult {
  userId: number;
  username: string;
  privilege: PrivilegeName;
  channels: number[];
  passwordSize: 16 | 20;
  /** How the slot was chosen. */
  slot: 'existing-name' | 'empty' | 'explicit';
  /** False when everything that can be observed was already in place (a repeated request). */
  changed: boolean;
  /**
   * What Test Password said before the write: 'empty-slot' (new user), 'matched'
   * (already this password), 'differed', or 'unknown' (no reliable Test Password on
   * this BMC, or a generated password).
   */
  passwordBefore: 'empty-slot' | 'matched' | 'differed' | 'unknown';
  /** Human-readable, in order: "wrote: …" for each write, "in place: …" for what already matched. */
  actions: string[];
  verified: Verification;
  /** Things that will likely stop an out-of-band login, found but not changed (e.g. a disabled channel). */
  warnings: string[];
  bmc: BmcIdentity;
  /** IPMI requests this change issued, retries included. */
  requests: number;
  /** Only for `generate`: the password set. */
  generatedPassword?: Secret;
  /** Only for `generate`: the policy that the BMC accepted. */
  passwordPolicy?: string;
}

export interface UserAccessInfo {
  privilege: string;
  privilegeLevel: number;
  ipmiMessaging: boolean;
  linkAuth: boolean;
  /** ipmitool's "callin": true when the user is not restricted to callback (§22.26 bit 6 clear). */
  callin: boolean;
}

export interface ChannelAccessInfo {
  accessMode: 'disabled' | 'pre-boot' | 'always' | 'shared';
  privilegeLimit: string;
}

export interface BmcInfo {
  device: {
    deviceId: number;
    deviceRevision: number;
    firmware: string;
    ipmiVersion: string;
    manufacturerId: number;
    productId: number;
    updateInProgress: boolean;
  };
  ipmiVersion: string;
  lanChannels: Array<{
    channel: number;
    medium: string;
    mediumCode: number;
    protocol: number;
    sessionSupport: 'session-less' | 'single-session' | 'multi-session' | 'session-based';
    activeSessions: number;
    access: { volatile: ChannelAccessInfo | null; nonVolatile: ChannelAccessInfo | null };
  }>;
  maxUsers: number;
  fixedNameUsers: number;
  enabledUsers: number;
  users: Array<{
    id: number;
    name: string;
    enabled: boolean;
    enabledSource: 'status' | 'ipmi-messaging';
    fixedName: boolean;
    access: Record<number, UserAccessInfo>;
  }>;
  lan: { channel?: number; address?: string; v6address?: string; mac?: string };
}

export interface RollbackStep {
  action: string;
  ok: boolean;
  error?: string;
  note?: string;
}

export interface RecoveryReport {
  /** When the interrupted change started, by whom (pid) and on which slot. */
  startedAt: string;
  pid: number;
  userId: number;
  username: string;
  /** 'rolled-back': the slot is as before the change; 'rollback-failed': steps failed, the journal is kept; 'discarded': the journal was torn, so nothing had been written. */
  outcome: 'rolled-back' | 'rollback-failed' | 'discarded';
  steps: RollbackStep[];
  requests: number;
}
