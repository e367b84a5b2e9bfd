/**
 * What each command result is on the wire: one declared type per result,
 * with exactly the JSON keys it carries (snake_case, like every IPA record;
 * docs/http-api.md), and one function that builds it from the engine's
 * result. A key exists on the wire only because it is written here, so no
 * field of the engine (a `generatedPassword`, a key added later) reaches a
 * record, the CLI's `--json` or a discovery result by accident: a Secret has
 * no declared key. Key order is the engine's (test/agent/wire-results.test.ts
 * pins it). poll.get_hardware_info answers IPA's inventory, whose type is
 * declared where it is collected (agent/inventory/types.ts).
 */
import type { BmcIdentity, BmcInfo, ChannelAccessInfo, SetCredentialsResult, UserAccessInfo, Verification } from '../../service/types.js';
import type { StampedResult } from './ports.js';

// ---- bmc.set_credentials, the set_bmc_credentials step, discovery, `set-credentials --json`

export interface VerificationWire {
  password_test: Verification['passwordTest'];
  password_test_code?: number;
  name: boolean;
  enabled: boolean;
  enabled_source: Verification['enabledSource'];
  /** Per LAN channel number. */
  access: Record<string, boolean>;
  channel_access?: Record<string, boolean>;
}

export interface BmcIdentityWire {
  ipmi_version: string;
  manufacturer_id: number;
  product_id: number;
  firmware: string;
  lan_channel?: number;
  address?: string;
  v6address?: string;
  mac?: string;
}

export interface SetCredentialsResultWire {
  /** The backend that produced the result; `simulated` never reads as a real BMC (agent/backend.ts). */
  backend: string;
  user_id: number;
  username: string;
  privilege: SetCredentialsResult['privilege'];
  channels: number[];
  password_size: SetCredentialsResult['passwordSize'];
  slot: SetCredentialsResult['slot'];
  changed: boolean;
  password_before: SetCredentialsResult['passwordBefore'];
  actions: string[];
  verified: VerificationWire;
  warnings: string[];
  bmc: BmcIdentityWire;
  requests: number;
  /** Only when the password was generated: the policy the BMC accepted (never the password). */
  password_policy?: string;
  /** Whether the agent generated the password (it is never returned). */
  password_generated: boolean;
}

/** Per-channel maps keyed by channel number, copied in their own order. */
function perChannel<T, U>(m: Record<number, T>, f: (v: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(m).map(([ch, v]) => [ch, f(v)]));
}

const same = <T>(v: T): T => v;

export function verificationWire(v: Verification): VerificationWire {
  return {
    password_test: v.passwordTest,
    ...(v.passwordTestCode !== undefined ? { password_test_code: v.passwordTestCode } : {}),
    name: v.name,
    enabled: v.enabled,
    enabled_source: v.enabledSource,
    access: perChannel(v.access, same),
    ...(v.channelAccess !== undefined ? { channel_access: perChannel(v.channelAccess, same) } : {}),
  };
}

export function bmcIdentityWire(b: BmcIdentity): BmcIdentityWire {
  return {
    ipmi_version: b.ipmiVersion,
    manufacturer_id: b.manufacturerId,
    product_id: b.productId,
    firmware: b.firmware,
    ...(b.lanChannel !== undefined ? { lan_channel: b.lanChannel } : {}),
    ...(b.address !== undefined ? { address: b.address } : {}),
    ...(b.v6address !== undefined ? { v6address: b.v6address } : {}),
    ...(b.mac !== undefined ? { mac: b.mac } : {}),
  };
}

/** The result of a credential change; `generated` says whether the agent made the password up. */
export function setCredentialsWire(r: StampedResult<SetCredentialsResult>, generated: boolean): SetCredentialsResultWire {
  return {
    backend: r.backend,
    user_id: r.userId,
    username: r.username,
    privilege: r.privilege,
    channels: [...r.channels],
    password_size: r.passwordSize,
    slot: r.slot,
    changed: r.changed,
    password_before: r.passwordBefore,
    actions: [...r.actions],
    verified: verificationWire(r.verified),
    warnings: [...r.warnings],
    bmc: bmcIdentityWire(r.bmc),
    requests: r.requests,
    ...(r.passwordPolicy !== undefined ? { password_policy: r.passwordPolicy } : {}),
    password_generated: generated,
  };
}

// ---- bmc.get_info, `bmc info --json`

export interface ChannelAccessWire {
  access_mode: ChannelAccessInfo['accessMode'];
  privilege_limit: string;
}

export interface LanChannelWire {
  channel: number;
  medium: string;
  medium_code: number;
  protocol: number;
  session_support: BmcInfo['lanChannels'][number]['sessionSupport'];
  active_sessions: number;
  access: { volatile: ChannelAccessWire | null; non_volatile: ChannelAccessWire | null };
}

export interface UserAccessWire {
  privilege: string;
  privilege_level: number;
  ipmi_messaging: boolean;
  link_auth: boolean;
  callin: boolean;
}

export interface UserSlotWire {
  id: number;
  name: string;
  enabled: boolean;
  enabled_source: BmcInfo['users'][number]['enabledSource'];
  fixed_name: boolean;
  /** Per LAN channel number. */
  access: Record<string, UserAccessWire>;
}

export interface BmcInfoWire {
  backend: string;
  device: {
    device_id: number;
    device_revision: number;
    firmware: string;
    ipmi_version: string;
    manufacturer_id: number;
    product_id: number;
    update_in_progress: boolean;
  };
  ipmi_version: string;
  lan_channels: LanChannelWire[];
  max_users: number;
  fixed_name_users: number;
  enabled_users: number;
  users: UserSlotWire[];
  lan: { channel?: number; address?: string; mac?: string; v6address?: string };
  /** Only on the simulated BMC: its note first (agent/backend.ts). */
  warnings?: string[];
}

const channelAccessWire = (a: ChannelAccessInfo | null): ChannelAccessWire | null => (a ? { access_mode: a.accessMode, privilege_limit: a.privilegeLimit } : null);

const userAccessWire = (a: UserAccessInfo): UserAccessWire => ({
  privilege: a.privilege, privilege_level: a.privilegeLevel, ipmi_messaging: a.ipmiMessaging, link_auth: a.linkAuth, callin: a.callin,
});

export function bmcInfoWire(i: StampedResult<BmcInfo>): BmcInfoWire {
  const d = i.device;
  const lan = i.lan;
  return {
    backend: i.backend,
    device: {
      device_id: d.deviceId, device_revision: d.deviceRevision, firmware: d.firmware, ipmi_version: d.ipmiVersion,
      manufacturer_id: d.manufacturerId, product_id: d.productId, update_in_progress: d.updateInProgress,
    },
    ipmi_version: i.ipmiVersion,
    lan_channels: i.lanChannels.map((c) => ({
      channel: c.channel, medium: c.medium, medium_code: c.mediumCode, protocol: c.protocol, session_support: c.sessionSupport,
      active_sessions: c.activeSessions, access: { volatile: channelAccessWire(c.access.volatile), non_volatile: channelAccessWire(c.access.nonVolatile) },
    })),
    max_users: i.maxUsers,
    fixed_name_users: i.fixedNameUsers,
    enabled_users: i.enabledUsers,
    users: i.users.map((u) => ({
      id: u.id, name: u.name, enabled: u.enabled, enabled_source: u.enabledSource, fixed_name: u.fixedName, access: perChannel(u.access, userAccessWire),
    })),
    // The order the BMC reader fills it in (service/bmc-reader.ts lanAddress).
    lan: {
      ...(lan.channel !== undefined ? { channel: lan.channel } : {}),
      ...(lan.address !== undefined ? { address: lan.address } : {}),
      ...(lan.mac !== undefined ? { mac: lan.mac } : {}),
      ...(lan.v6address !== undefined ? { v6address: lan.v6address } : {}),
    },
    ...(i.warnings !== undefined ? { warnings: [...i.warnings] } : {}),
  };
}

// ---- <kind>.get_<kind>_steps and <kind>.execute_<kind>_step (agent/api/commands/steps.ts)

export type StepKind = 'clean' | 'deploy' | 'service';

export interface ArgInfoWire {
  description: string;
  required: boolean;
}

/** A step as Ironic caches it from get_<kind>_steps (IPA's hardware manager step dict). */
export interface StepDescriptorWire {
  step: string;
  priority: number;
  interface: string;
  reboot_requested: boolean;
  /** clean and service steps only. */
  abortable?: boolean;
  /** clean steps only. */
  requires_ramdisk?: boolean;
  argsinfo: Record<string, ArgInfoWire>;
}

/** `{"<kind>_steps": {"<manager>": [step]}, "hardware_manager_version": {...}}`. */
export type GetStepsResultWire<K extends StepKind> = { [P in `${K}_steps`]: Record<string, StepDescriptorWire[]> } & {
  hardware_manager_version: Record<string, string>;
};

/** The step Ironic sent, echoed without its args (they may hold the password); Ironic matches it by interface and name. */
export interface StepEchoWire {
  interface: string;
  step: string;
  [field: string]: unknown;
}

/** `{"<kind>_result": <set_credentials result>, "<kind>_step": <step echo>}`. */
export type ExecuteStepResultWire<K extends StepKind> = { [P in `${K}_result`]: SetCredentialsResultWire } & { [P in `${K}_step`]: StepEchoWire };

// A computed key (`${kind}_steps`) types as a string index in TypeScript, so the one
// object per key below is asserted to its template-literal key; nothing else is.
export function getStepsWire<K extends StepKind>(kind: K, manager: string, steps: StepDescriptorWire[], version: Record<string, string>): GetStepsResultWire<K> {
  const list = { [`${kind}_steps`]: { [manager]: steps } } as { [P in `${K}_steps`]: Record<string, StepDescriptorWire[]> };
  return { ...list, hardware_manager_version: version };
}

export function executeStepWire<K extends StepKind>(kind: K, result: SetCredentialsResultWire, echo: StepEchoWire): ExecuteStepResultWire<K> {
  const r = { [`${kind}_result`]: result } as { [P in `${K}_result`]: SetCredentialsResultWire };
  const s = { [`${kind}_step`]: echo } as { [P in `${K}_step`]: StepEchoWire };
  return { ...r, ...s };
}

// ---- log.collect_system_logs, standby.sync, system.lockdown (agent/api/commands/system.ts)

/** A base64 tar.gz of the agent's log and the boot's journal, redacted. */
export interface SystemLogsResultWire {
  system_logs: string;
}

/** A one-line answer, as IPA's for sync and lockdown. */
export interface MessageResultWire {
  result: string;
}
