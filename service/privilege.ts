/**
 * Privilege levels as operators type them: a name (ipmitool's or this agent's
 * spelling, any case) or the §6.8 / Table 22-28 number, decimal or hex —
 * `administrator`, `ADMINISTRATOR`, `admin`, `4`, `0x4` are the same level.
 */
import { Privilege } from '../ipmi-kcs/spec.js';

const BY_NAME: Readonly<Record<string, number>> = Object.freeze({
  callback: Privilege.CALLBACK,
  user: Privilege.USER,
  operator: Privilege.OPERATOR,
  administrator: Privilege.ADMINISTRATOR,
  admin: Privilege.ADMINISTRATOR,
  oem: Privilege.OEM,
  'no-access': Privilege.NO_ACCESS,
  no_access: Privilege.NO_ACCESS,
  'no access': Privilege.NO_ACCESS,
  noaccess: Privilege.NO_ACCESS,
});

/** The levels a BMC stores (Table 22-28); 0 and 6..14 are reserved. */
export const PRIVILEGE_LEVELS: readonly number[] = Object.freeze([1, 2, 3, 4, 5, 15]);

/** What an error message lists as valid input. */
export const PRIVILEGE_CHOICES = 'callback (1), user (2), operator (3), administrator (4), oem (5), no-access (15)';

/** ipmitool's names (`ipmi_privlvl_vals`), as `user list` prints them; unknown: `Unknown (0xNN)`. */
export function ipmitoolPrivilegeName(level: number): string {
  switch (level) {
    case Privilege.CALLBACK: return 'CALLBACK';
    case Privilege.USER: return 'USER';
    case Privilege.OPERATOR: return 'OPERATOR';
    case Privilege.ADMINISTRATOR: return 'ADMINISTRATOR';
    case Privilege.OEM: return 'OEM';
    case Privilege.NO_ACCESS: return 'NO ACCESS';
    default: return `Unknown (0x${level.toString(16).toUpperCase().padStart(2, '0')})`;
  }
}

/** The level `text` names, or undefined when it names none (the caller reports {@link PRIVILEGE_CHOICES}). */
export function parsePrivilege(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t in BY_NAME) return BY_NAME[t];
  const n = /^0x[0-9a-f]{1,2}$/.test(t) ? parseInt(t, 16) : /^\d{1,2}$/.test(t) ? Number(t) : NaN;
  return PRIVILEGE_LEVELS.includes(n) ? n : undefined;
}
