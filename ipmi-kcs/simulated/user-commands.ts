/**
 * The user-management commands of the simulated BMC (§22.26–22.30). User
 * access is kept per channel, as the spec has it (ipmi_sim keeps it global).
 */
import { CC } from '../completion-codes.js';
import { ANONYMOUS_USER_ID, PASSWORD_SIZE_20, PasswordOp, Privilege, USER_NAME_LENGTH } from '../spec.js';
import { fail, ok, sessionChannel, type CommandContext, type CommandHandler, type Reply } from './command-context.js';
import { nameText, type UserSlot } from './bmc-state.js';
import { passwordMatches } from './password-hash.js';

/**
 * User ID checks shared by every user command: 0 is reserved (0xCC, invalid
 * field); above the BMC's maximum is out of the contiguous range 1..max (0xC9).
 */
function userSlot(ctx: CommandContext, idByte: number): UserSlot | Reply {
  const id = idByte & 0x3f;
  if (id === 0) return fail(CC.INVALID_DATA_FIELD);
  const slot = ctx.state.users[id];
  if (id > ctx.profile.maxUsers || !slot) return fail(CC.PARAMETER_OUT_OF_RANGE);
  return slot;
}

const isReply = (x: UserSlot | Reply): x is Reply => 'completionCode' in x;

function validPrivilege(ctx: CommandContext, p: number): boolean {
  return (p >= Privilege.CALLBACK && p <= Privilege.ADMINISTRATOR) || p === Privilege.NO_ACCESS
    || (p === Privilege.OEM && ctx.profile.quirks.oemPrivilege);
}

/** §22.27 Get User Access, Table 22-29. */
export const getUserAccess: CommandHandler = (ctx, data) => {
  if (data.length !== 2) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, b1 = 0] = data;
  if (b0 & 0xf0 || b1 & 0xc0) return fail(CC.INVALID_DATA_FIELD);
  const ch = sessionChannel(ctx.profile, b0 & 0x0f);
  if (!ch) return fail(CC.INVALID_DATA_FIELD);
  const slot = userSlot(ctx, b1);
  if (isReply(slot)) return slot;
  const enabledCount = ctx.state.users.filter((u) => u?.enabled).length;
  const status = ctx.profile.quirks.enableStatusBits ? slot.enableStatus : 0;
  const a = slot.access[ch.number];
  if (!a) return fail(CC.UNSPECIFIED);
  return ok([
    ctx.profile.maxUsers & 0x3f,
    (status << 6) | (enabledCount & 0x3f),
    ctx.profile.fixedNames & 0x3f,
    (a.callbackOnly ? 0x40 : 0) | (a.linkAuth ? 0x20 : 0) | (a.ipmiMessaging ? 0x10 : 0) | (a.privilege & 0x0f),
  ]);
};

/**
 * §22.26 Set User Access, Table 22-28: 3 bytes, or 4 with the session limit.
 * Byte 1 bit 7 = 1 applies bits 6:4; the privilege limit is always applied.
 */
export const setUserAccess: CommandHandler = (ctx, data) => {
  if (data.length !== 3 && data.length !== 4) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = data;
  if (b1 & 0xc0 || b2 & 0xf0 || b3 & 0xf0) return fail(CC.INVALID_DATA_FIELD);
  const ch = sessionChannel(ctx.profile, b0 & 0x0f);
  if (!ch) return fail(CC.INVALID_DATA_FIELD);
  const slot = userSlot(ctx, b1);
  if (isReply(slot)) return slot;
  const priv = b2 & 0x0f;
  if (!validPrivilege(ctx, priv)) return fail(CC.INVALID_DATA_FIELD);
  const q = ctx.profile.quirks;
  if (data.length === 4) {
    if (q.sessionLimitMustBeZero && b3 !== 0) return fail(CC.INVALID_DATA_FIELD);
    if (b3 > q.maxSessionLimit) return fail(CC.INVALID_DATA_FIELD);
  }
  const a = slot.access[ch.number];
  if (!a) return fail(CC.UNSPECIFIED);
  const change = (b0 & 0x80) !== 0;
  // Read-modify-write tools that enable messaging before raising the privilege send exactly this.
  if (q.privilegeBeforeMessaging && change && (b0 & 0x10) && priv === Privilege.NO_ACCESS) {
    return fail(CC.INVALID_DATA_FIELD);
  }
  if (change) {
    a.callbackOnly = (b0 & 0x40) !== 0;
    a.linkAuth = (b0 & 0x20) !== 0;
    a.ipmiMessaging = (b0 & 0x10) !== 0;
  }
  a.privilege = priv;
  if (data.length === 4) a.sessionLimit = b3;
  ctx.changed();
  return ok();
};

/** §22.28 Set User Name, Table 22-30: user id + 16 name bytes, NUL-padded. */
export const setUserName: CommandHandler = (ctx, data) => {
  if (data.length !== 1 + USER_NAME_LENGTH) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0] = data;
  if (b0 & 0xc0) return fail(CC.INVALID_DATA_FIELD);
  const slot = userSlot(ctx, b0);
  if (isReply(slot)) return slot;
  // Fixed names (user 1, the null user, and vendor slots, §22.27 byte 3) cannot be changed.
  if (slot.id <= ctx.profile.fixedNames) return fail(CC.INVALID_DATA_FIELD);
  const name = Array.from(data.subarray(1));
  const end = name.indexOf(0);
  const used = end < 0 ? name : name.slice(0, end);
  // ASCII printable only; bytes after the terminating NUL must be padding.
  if (used.some((b) => b < 0x20 || b > 0x7e)) return fail(CC.INVALID_DATA_FIELD);
  if (end >= 0 && name.slice(end).some((b) => b !== 0)) return fail(CC.INVALID_DATA_FIELD);
  const text = nameText(name);
  const q = ctx.profile.quirks;
  if (text !== '' && q.namePattern && !q.namePattern.test(text)) return fail(CC.INVALID_DATA_FIELD);
  if (text !== '' && q.uniqueNames && ctx.state.users.some((u) => u && u.id !== slot.id && nameText(u.name) === text)) {
    return fail(CC.INVALID_DATA_FIELD);
  }
  slot.name = name;
  ctx.changed();
  return ok();
};

/** §22.29 Get User Name, Table 22-31. */
export const getUserName: CommandHandler = (ctx, data) => {
  if (data.length !== 1) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const [b0 = 0] = data;
  if (b0 & 0xc0) return fail(CC.INVALID_DATA_FIELD);
  const slot = userSlot(ctx, b0);
  if (isReply(slot)) return slot;
  const code = ctx.profile.quirks.emptyNameCode;
  if (code !== undefined && slot.id !== ANONYMOUS_USER_ID && nameText(slot.name) === '') return fail(code);
  return ok([...slot.name]);
};

function policyViolated(ctx: CommandContext, pw: Uint8Array): boolean {
  const policy = ctx.profile.quirks.passwordPolicy;
  if (!policy) return false;
  const end = pw.indexOf(0);
  const text = Buffer.from(end < 0 ? pw : pw.subarray(0, end)).toString('latin1');
  if (text.length < policy.minLength) return true;
  if ([...text].some((c) => c < '!' || c > '~')) return true;
  if (policy.requireClasses && ![/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].every((re) => re.test(text))) return true;
  if (policy.noAdjacentRepeat && /(.)\1/.test(text)) return true;
  return false;
}

/**
 * §22.30 Set User Password, Table 22-33. Byte 1 [7] selects the 20-byte form,
 * byte 2 [1:0] the operation. Set and test carry exactly 16 or 20 password
 * bytes; disable/enable may omit them. Test answers 0x80 (size right, data
 * wrong) or 0x81 (the password was stored with the other size).
 */
export const setUserPassword: CommandHandler = (ctx, data) => {
  const [b0 = 0, b1 = 0] = data;
  const q = ctx.profile.quirks;
  if (data.length < 2) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const size: 16 | 20 = b0 & PASSWORD_SIZE_20 ? 20 : 16;
  if (b0 & 0x40 || b1 & 0xfc) return fail(CC.INVALID_DATA_FIELD);
  if (size === 20 && !q.password20) return fail(CC.INVALID_DATA_FIELD);
  const op = b1 & 0x03;
  const pwLen = data.length - 2;
  const needsPassword = op === PasswordOp.SET_PASSWORD || op === PasswordOp.TEST_PASSWORD;
  if (pwLen !== size && (needsPassword || pwLen !== 0 || q.enableNeedsPasswordBytes)) return fail(CC.REQUEST_DATA_LENGTH_INVALID);
  const slot = userSlot(ctx, b0);
  if (isReply(slot)) return slot;
  const pw = data.subarray(2);
  switch (op) {
    case PasswordOp.DISABLE_USER:
      slot.enabled = false;
      slot.enableStatus = 2;
      ctx.changed();
      return ok();
    case PasswordOp.ENABLE_USER:
      // research/ipmi.md §5 "Enable order": some firmware needs name + password first.
      if (q.enableNeedsCredentials && (slot.password.isNull || (slot.id !== ANONYMOUS_USER_ID && nameText(slot.name) === ''))) {
        return fail(CC.NOT_SUPPORTED_IN_PRESENT_STATE);
      }
      slot.enabled = true;
      slot.enableStatus = 1;
      ctx.changed();
      return ok();
    case PasswordOp.SET_PASSWORD:
      if (policyViolated(ctx, pw)) return fail(q.passwordPolicy?.code ?? CC.INVALID_DATA_FIELD);
      slot.password = ctx.hashPassword(pw, size);
      ctx.changed();
      return ok();
    default: // TEST_PASSWORD
      if (slot.password.size !== size) return fail(q.testWrongSizeCode);
      return passwordMatches(slot.password, pw) ? ok() : fail(0x80);
  }
};
