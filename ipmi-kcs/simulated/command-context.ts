/**
 * What a command handler of the simulated BMC sees, and what it answers.
 */
import type { BmcState } from './bmc-state.js';
import type { BmcProfile, ChannelProfile } from './profiles.js';
import type { StoredPassword } from './password-hash.js';
import { Channel } from '../spec.js';

export interface Reply {
  completionCode: number;
  data: number[];
}

export interface CommandContext {
  readonly profile: BmcProfile;
  readonly state: BmcState;
  /** Marks the state changed (for the state file and the non-volatile snapshot). */
  changed(): void;
  /** Hashes a password at the cost this BMC stores with (see password-hash.ts). */
  hashPassword(bytes: Uint8Array, size: 16 | 20): StoredPassword;
}

export type CommandHandler = (ctx: CommandContext, data: Uint8Array) => Reply;

export const ok = (data: number[] = []): Reply => ({ completionCode: 0, data });
export const fail = (completionCode: number): Reply => ({ completionCode, data: [] });

/** Resolves channel 0xE ("this channel", §6.3 Table 6-1) to the system interface a request in-band arrives on. */
export function resolveChannel(ch: number): number {
  return ch === Channel.CURRENT ? Channel.SYSTEM_INTERFACE : ch;
}

export function findChannel(profile: BmcProfile, ch: number): ChannelProfile | undefined {
  return profile.channels.find((c) => c.number === resolveChannel(ch));
}

/** Session-based channels (LAN, serial) are the ones with channel access and user access. */
export function sessionChannel(profile: BmcProfile, ch: number): ChannelProfile | undefined {
  const c = findChannel(profile, ch);
  return c?.access ? c : undefined;
}
