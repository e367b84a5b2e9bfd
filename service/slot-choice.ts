/**
 * Which user slot a change writes (IPMI v2.0 §22.27–22.29). Pure: it decides
 * from the names read and the BMC's limits, and refuses with a ServiceError
 * before anything is written.
 */
import { ServiceError } from './errors.js';

export interface SlotChoiceInput {
  username: string;
  /** Explicit user id, if the request named one. */
  slot?: number;
  allowFixedSlot: boolean;
  /** Names of slots 2..maxUsers ('' = empty). */
  names: ReadonlyMap<number, string>;
  maxUsers: number;
  /** §22.27 byte 3: user ids 1..fixedNameCount have fixed names (user 1 included). */
  fixedNameCount: number;
}

export interface SlotChoice {
  userId: number;
  how: 'existing-name' | 'empty' | 'explicit';
  /** The slot's name now ('' = empty). */
  currentName: string;
  warnings: string[];
}

/**
 * - a slot already named `username` is reused (the lowest, which LAN logins
 *   match first, if several: ipmi_sim and some BMCs allow duplicates);
 * - else the first empty slot above user 1 (anonymous, §6.9.1) and the vendor
 *   fixed-name slots (Supermicro ADMIN, Dell root, Lenovo USERID) — as xCAT does;
 * - or the explicit slot, unless another slot holds the name (Intel S5500WBV and
 *   OpenBMC refuse duplicates).
 * A fixed-name slot is touched only with `allowFixedSlot`, and never renamed.
 */
export function chooseSlot(input: SlotChoiceInput): SlotChoice {
  const { username, names, maxUsers } = input;
  const fixed = input.fixedNameCount;
  const warnings: string[] = [];
  const holders = [...names].filter(([, n]) => n === username).map(([id]) => id).sort((a, b) => a - b);
  let userId: number;
  let how: SlotChoice['how'];
  if (input.slot !== undefined) {
    userId = input.slot;
    how = 'explicit';
    if (userId > maxUsers) throw new ServiceError('INVALID_REQUEST', `slot ${userId} is beyond this BMC's ${maxUsers} user ids`, { field: 'slot', details: { maxUsers } });
    const elsewhere = holders.filter((id) => id !== userId);
    if (elsewhere.length) {
      throw new ServiceError('INVALID_REQUEST', `user name "${username}" already exists in slot ${elsewhere.join(', ')}; several BMCs refuse duplicate names`, { field: 'username', details: { existingSlots: elsewhere } });
    }
  } else if (holders.length) {
    userId = holders[0]!;
    how = 'existing-name';
    if (holders.length > 1) warnings.push(`user name "${username}" is in slots ${holders.join(', ')}; updated the lowest, which LAN logins match first`);
  } else {
    const lowest = Math.max(fixed, 1) + 1;
    const free = [...names].filter(([id, n]) => id >= lowest && n === '').map(([id]) => id).sort((a, b) => a - b)[0];
    if (free === undefined) {
      throw new ServiceError('NO_FREE_SLOT', `no empty user slot among ${lowest}..${maxUsers} (slots 1..${lowest - 1} are anonymous or fixed-name); nothing was written`, { details: { maxUsers, fixedNameUsers: fixed } });
    }
    userId = free;
    how = 'empty';
  }
  const currentName = names.get(userId) ?? '';
  if (userId <= fixed) {
    if (currentName !== username) {
      throw new ServiceError('INVALID_REQUEST', `slot ${userId} is a vendor fixed-name slot ("${currentName}"); its name cannot be changed (§22.27)`, { field: 'slot', details: { fixedNameUsers: fixed } });
    }
    if (!input.allowFixedSlot) {
      throw new ServiceError('INVALID_REQUEST', `"${username}" is the vendor fixed-name slot ${userId}; pass allowFixedSlot to change it`, { field: 'allowFixedSlot', details: { userId, fixedNameUsers: fixed } });
    }
  }
  return { userId, how, currentName, warnings };
}
