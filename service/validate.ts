/**
 * Request validation: everything that can be refused before talking to the
 * BMC, as the credential contract (credential-contract.ts) declares it. What
 * needs the BMC's state (IPMI version, user count, fixed-name and
 * administrator slots, LAN channels) is refused by the engine before its
 * first write.
 */
import { ServiceError } from './errors.js';
import { checkEngineRequest, checkPasswordBytes, privilegeName, type ContractViolation } from './credential-contract.js';
import { Secret } from './secret.js';
import type { PrivilegeName, SetCredentialsRequest } from './types.js';

export interface NormalizedRequest {
  username: string;
  password?: Secret;
  generate: boolean;
  privilege: PrivilegeName;
  slot?: number;
  channels?: number[];
  enableChannelAccess: boolean;
  allowFixedSlot: boolean;
  allowLockout: boolean;
}

const invalid = (field: string, message: string): ServiceError => new ServiceError('INVALID_REQUEST', message, { field });

/** A contract violation as the engine's error, naming the field by its engine name. */
export function violationError(v: ContractViolation): ServiceError {
  return new ServiceError('INVALID_REQUEST', `${v.engineField}: ${v.message}`, { field: v.engineField, details: { wireField: v.field, ...(v.flag ? { flag: v.flag } : {}) } });
}

export function validateRequest(req: SetCredentialsRequest): NormalizedRequest {
  if (req === null || typeof req !== 'object') throw invalid('request', 'request must be an object');
  const v = checkEngineRequest(req as unknown as Record<string, unknown>);
  if (v) throw violationError(v);
  if (req.password !== undefined) {
    if (!(req.password instanceof Secret)) throw invalid('password', 'password must be a Secret');
    if (req.password.disposed) throw invalid('password', 'password has been disposed');
    const bytes = req.password.copyBytes();
    try {
      const problem = checkPasswordBytes(bytes);
      if (problem) throw invalid('password', `password: ${problem}`);
    } finally {
      bytes.fill(0);
    }
  }
  const out: NormalizedRequest = {
    username: req.username,
    generate: req.generate === true,
    privilege: privilegeName(req.privilege ?? 'administrator')!,
    enableChannelAccess: req.enableChannelAccess === true,
    allowFixedSlot: req.allowFixedSlot === true,
    allowLockout: req.allowLockout === true,
  };
  if (req.password !== undefined) out.password = req.password;
  if (req.slot !== undefined) out.slot = req.slot;
  if (req.channels !== undefined) out.channels = [...req.channels].sort((a, b) => a - b);
  return out;
}
