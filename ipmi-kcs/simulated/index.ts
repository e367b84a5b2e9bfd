/**
 * The simulated BMC backend: an in-process, spec-faithful BMC with vendor
 * profiles and scripted faults, behind the transport contract.
 *
 *   const t = createSimulatedTransport({ profile: 'dual-lan' });
 *   await t.send({ netFn: 0x06, cmd: 0x01 });   // Get Device ID
 *   t.bmc.busy(2);                              // test controls
 */
import { SimulatedBmc } from './simulated-bmc.js';
import { SimulatedTransport } from './simulated-transport.js';

export interface CreateSimulatedTransportOptions {
  /** Vendor profile, see {@link listProfiles} (default `ipmi20`). */
  profile?: string;
  /** Added before every answer, in ms (default 0). */
  latencyMs?: number;
  /** Optional JSON state file (mode 0600; passwords as salted hashes only). */
  stateFile?: string;
  /** Non-volatile commit behaviour of the BMC, see {@link SimulatedBmcOptions}. */
  commit?: 'immediate' | 'deferred';
}

export function createSimulatedTransport(opts: CreateSimulatedTransportOptions = {}): SimulatedTransport {
  const bmc = new SimulatedBmc({ profile: opts.profile, stateFile: opts.stateFile, commit: opts.commit });
  return new SimulatedTransport(bmc, { latencyMs: opts.latencyMs });
}

export { listProfiles, getProfile, DEFAULT_PROFILE, lanChannels } from './profiles.js';
export type { BmcProfile, Quirks, ChannelProfile, LanConfig } from './profiles.js';
export { SimulatedBmc } from './simulated-bmc.js';
export type { SimulatedBmcOptions, RecordEntry, UserView, ResetOptions, BmcOutcome } from './simulated-bmc.js';
export { SimulatedTransport } from './simulated-transport.js';
export type { SimulatedTransportOptions } from './simulated-transport.js';
export type { FaultSpec, FaultAction, FaultMatch, ResetRevert, ResetWindowResponse } from './faults.js';
export type { UserChannelAccess, EnableStatus, ChannelAccessState } from './bmc-state.js';
