/** Request validation: everything that can be refused before talking to the BMC. */
import { MAX_USER_ID, PASSWORD_20 } from '../ipmi-kcs/spec.js';
import { ServiceError } from './errors.js';
import { Secret } from './secret.js';
import { PRIVILEGE_LEVEL, type PrivilegeName, type SetCredentialsRequest } from './types.js';

/** The portable user-name subset: OpenBMC's pattern within §22.28's 16 bytes. */
export const USERNAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,15}$/;

export interface NormalizedRequest {
  username: string;
  password?: Secret;
  generate: boolean;
  privilege: PrivilegeName;
  slot?: number;
  channels?: number[];
  enableChannelAccess: boolean;
  allowFixedSlot: boolean;
}

const invalid = (field: string, message: string): ServiceError => new ServiceError('INVALID_REQUEST', message, { field });

export function validateRequest(req: SetCredentialsRequest): NormalizedRequest {
  if (req === null || typeof req !== 'object') throw invalid('request', 'request must be an object');
  const { username } = req;
  if (typeof username !== 'string' || !USERNAME_PATTERN.test(username)) {
    throw invalid('username', 'username must match [A-Za-z_][A-Za-z0-9_]{0,15}');
  }
  const generate = req.generate === true;
  if (req.generate !== undefined && typeof req.generate !== 'boolean') throw invalid('generate', 'generate must be a boolean');
  if (generate === (req.password !== undefined)) throw invalid('password', 'give exactly one of password and generate');
  if (req.password !== undefined) {
    if (!(req.password instanceof Secret)) throw invalid('password', 'password must be a Secret');
    if (req.password.disposed) throw invalid('password', 'password has been disposed');
    const bytes = req.password.copyBytes();
    try {
      if (bytes.length < 1 || bytes.length > PASSWORD_20) throw invalid('password', `password must be 1 to ${PASSWORD_20} bytes (§22.30), got ${bytes.length}`);
      // Printable ASCII only: NUL pads the field, and BMCs differ on everything else.
      if (bytes.some((b) => b < 0x20 || b > 0x7e)) throw invalid('password', 'password must be printable ASCII (0x20–0x7E)');
    } finally {
      bytes.fill(0);
    }
  }
  const privilege = req.privilege ?? 'administrator';
  if (!Object.hasOwn(PRIVILEGE_LEVEL, privilege)) throw invalid('privilege', 'privilege must be administrator, operator or user');
  if (req.slot !== undefined && (!Number.isInteger(req.slot) || req.slot < 2 || req.slot > MAX_USER_ID)) {
    throw invalid('slot', `slot must be a user id 2..${MAX_USER_ID} (user 1 is the anonymous user, §6.9.1)`);
  }
  let channels: number[] | undefined;
  if (req.channels !== undefined) {
    if (!Array.isArray(req.channels) || req.channels.length === 0) throw invalid('channels', 'channels must be a non-empty array');
    for (const ch of req.channels) {
      if (!Number.isInteger(ch) || ch < 1 || ch > 11) throw invalid('channels', 'LAN channels are numbered 1..11 (§6.3)');
    }
    channels = [...new Set(req.channels)].sort((a, b) => a - b);
  }
  for (const f of ['enableChannelAccess', 'allowFixedSlot'] as const) {
    if (req[f] !== undefined && typeof req[f] !== 'boolean') throw invalid(f, `${f} must be a boolean`);
  }
  const out: NormalizedRequest = {
    username, generate, privilege,
    enableChannelAccess: req.enableChannelAccess === true,
    allowFixedSlot: req.allowFixedSlot === true,
  };
  if (req.password !== undefined) out.password = req.password;
  if (req.slot !== undefined) out.slot = req.slot;
  if (channels) out.channels = channels;
  return out;
}
