/**
 * Get Device ID (§20.1) and the channel commands (§22.13, §22.22–22.24) of the
 * simulated BMC.
 */
import { CC } from '../completion-codes.js';
import { ANONYMOUS_USER_ID, Privilege } from '../spec.js';
import { fail, findChannel, ok, resolveChannel, sessionChannel, type CommandHandler } from './command-context.js';
import { nameText } from './bmc-state.js';
import type { ChannelAccessSetting } from './profiles.js';

/** §20.1 Get Device ID, Table 20-2: 15 response bytes (aux firmware revision included when the profile has one). */
export const getDeviceId: CommandHandler = (ctx, data) => {
  if (data.length !== 0) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const d = ctx.profile.device;
  const out = [
    d.deviceId,
    d.deviceRevision & 0x0f,
    d.firmwareMajor & 0x7f, // bit 7 clear: device available (normal operation)
    d.firmwareMinor,
    d.ipmiVersion,
    d.additionalSupport,
    d.manufacturerId & 0xff, (d.manufacturerId >> 8) & 0xff, (d.manufacturerId >> 16) & 0x0f,
    d.productId & 0xff, (d.productId >> 8) & 0xff,
  ];
  if (d.auxFirmware) out.push(...d.auxFirmware);
  return ok(out);
};

function accessByte(a: ChannelAccessSetting): number {
  return (a.pefAlertingDisabled ? 0x20 : 0) | (a.perMessageAuthDisabled ? 0x10 : 0) | (a.userLevelAuthDisabled ? 0x08 : 0) | (a.accessMode & 0x07);
}

/** §22.23 Get Channel Access, Table 22-22: byte 2 [7:6] 01 = non-volatile, 10 = present volatile. */
export const getChannelAccess: CommandHandler = (ctx, data) => {
  if (data.length !== 2) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, b1 = 0] = data;
  if (b0 & 0xf0 || b1 & 0x3f) return fail(CC.INVALID_DATA_FIELD);
  const which = b1 >> 6;
  if (which !== 1 && which !== 2) return fail(CC.INVALID_DATA_FIELD);
  const ch = findChannel(ctx.profile, b0 & 0x0f);
  if (!ch) return fail(CC.INVALID_DATA_FIELD);
  const st = ctx.state.channelAccess[ch.number];
  if (!st) return fail(0x82); // Table 22-22: command not supported for selected channel (session-less)
  const a = which === 1 ? st.nonVolatile : st.volatile;
  return ok([accessByte(a), a.privilegeLimit & 0x0f]);
};

/**
 * §22.22 Set Channel Access, Table 22-21. Byte 2 [7:6] and byte 3 [7:6] each
 * select: 00 don't set, 01 non-volatile, 10 volatile, 11 reserved.
 */
export const setChannelAccess: CommandHandler = (ctx, data) => {
  if (data.length !== 3) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, b1 = 0, b2 = 0] = data;
  if (b0 & 0xf0 || b2 & 0x30) return fail(CC.INVALID_DATA_FIELD);
  const accessSel = b1 >> 6;
  const privSel = b2 >> 6;
  if (accessSel === 3 || privSel === 3) return fail(CC.INVALID_DATA_FIELD);
  const ch = findChannel(ctx.profile, b0 & 0x0f);
  if (!ch) return fail(CC.INVALID_DATA_FIELD);
  const st = ctx.state.channelAccess[ch.number];
  if (!st) return fail(0x82); // Table 22-21: set not supported on selected channel
  const mode = b1 & 0x07;
  if (accessSel !== 0) {
    if (mode > 3) return fail(CC.INVALID_DATA_FIELD);
    if (!ctx.profile.quirks.accessModes.includes(mode)) return fail(0x83); // access mode not supported
  }
  const priv = b2 & 0x0f;
  if (privSel !== 0 && (priv < Privilege.CALLBACK || priv > Privilege.OEM)) return fail(CC.INVALID_DATA_FIELD);
  const targets = (sel: number): ChannelAccessSetting[] => (sel === 1 ? [st.nonVolatile] : sel === 2 ? [st.volatile] : []);
  for (const a of targets(accessSel)) {
    a.accessMode = mode;
    a.pefAlertingDisabled = (b1 & 0x20) !== 0;
    a.perMessageAuthDisabled = (b1 & 0x10) !== 0;
    a.userLevelAuthDisabled = (b1 & 0x08) !== 0;
  }
  for (const a of targets(privSel)) a.privilegeLimit = priv;
  if (accessSel || privSel) ctx.changed();
  return ok();
};

/** §22.24 Get Channel Info, Table 22-25. Vendor id 0x001BF2 (IPMI Forum), LS byte first. */
export const getChannelInfo: CommandHandler = (ctx, data) => {
  if (data.length !== 1) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0] = data;
  if (b0 & 0xf0) return fail(CC.INVALID_DATA_FIELD);
  const ch = findChannel(ctx.profile, b0);
  if (!ch) return fail(ctx.profile.quirks.missingChannelCode);
  return ok([ch.number, ch.medium & 0x7f, ch.protocol & 0x1f, ch.sessionSupport << 6, 0xf2, 0x1b, 0x00, 0x00, 0x00]);
};

/**
 * §22.13 Get Channel Authentication Capabilities, Table 22-15. Only
 * session-based channels have authentication; the system interface is
 * session-less, so it (and 0xE in-band) is an invalid channel here.
 */
export const getChannelAuthCapabilities: CommandHandler = (ctx, data) => {
  if (data.length !== 2) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, b1 = 0] = data;
  const wantV2 = (b0 & 0x80) !== 0;
  const v2 = ctx.profile.device.ipmiVersion === 0x02;
  // Bit 7 is reserved on 1.5 BMCs, which refuse it; ipmitool then retries without it.
  if (b0 & 0x70 || b1 & 0xf0 || (wantV2 && !v2)) return fail(CC.INVALID_DATA_FIELD);
  const priv = b1 & 0x0f;
  if (priv < Privilege.CALLBACK || priv > Privilege.OEM) return fail(CC.INVALID_DATA_FIELD);
  const ch = sessionChannel(ctx.profile, b0 & 0x0f);
  if (!ch) return fail(CC.INVALID_DATA_FIELD);
  const access = ctx.state.channelAccess[ch.number]?.volatile;
  const users = ctx.state.users.filter((u) => u !== undefined);
  const anon = users.find((u) => u.id === ANONYMOUS_USER_ID);
  const named = users.some((u) => u.enabled && u.id !== ANONYMOUS_USER_ID && nameText(u.name) !== '');
  const nullNameWithPassword = !!anon && anon.enabled && !anon.password.isNull;
  const anonymous = !!anon && anon.enabled && anon.password.isNull;
  return ok([
    resolveChannel(ch.number),
    (wantV2 ? 0x80 : 0) | (ctx.profile.quirks.authTypes & 0x3f),
    (access?.perMessageAuthDisabled ? 0x10 : 0) | (access?.userLevelAuthDisabled ? 0x08 : 0)
      | (named ? 0x04 : 0) | (nullNameWithPassword ? 0x02 : 0) | (anonymous ? 0x01 : 0),
    wantV2 ? 0x03 : 0x00, // [1] IPMI 2.0 connections, [0] IPMI 1.5 connections
    0x00, 0x00, 0x00, // OEM IANA: none
    0x00,
  ]);
};
