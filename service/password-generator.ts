/**
 * BMC-safe random passwords. The policies and their order follow what MAAS
 * learned from real BMCs (bmc_config.py `_generate_random_password`, LP:1621175,
 * LP:1758760, LP:1993916, LP:2081842, LP:2130621), but drawn from a CSPRNG.
 *
 * Every policy: printable ASCII only (never NUL, which pads IPMI password
 * fields, §22.30), at least two upper, two lower and two digits, no two
 * identical adjacent characters (Huawei/Lenovo policies), first character
 * alphanumeric (early OpenBMC accepted `[a-zA-Z_0-9][a-zA-Z_0-9,?:`!"]*` only).
 */
import { randomInt as cryptoRandomInt } from 'node:crypto';
import { Secret } from './secret.js';

export interface PasswordPolicy {
  readonly name: string;
  readonly length: number;
  /** Special characters to include (at least one) — empty for alphanumeric-only policies. */
  readonly specials: string;
}

/**
 * Tried in order when a BMC rejects a generated password as a policy violation.
 * 16-character policies come first: they go out in the 16-byte form, which every
 * BMC (IPMI 1.5 included) accepts. 20-character ones are IPMI 2.0 only (§22.30).
 */
export const PASSWORD_POLICIES: readonly PasswordPolicy[] = Object.freeze([
  // Mixed classes with a conservative special set: satisfies Huawei/Lenovo/DGX
  // complexity rules (≥13 characters with a special) and early OpenBMC's charset.
  { name: 'mixed-16', length: 16, specials: '!_,?:' },
  // Some BMCs reject any special character (MAAS's first candidate is alphanumeric).
  { name: 'alnum-16', length: 16, specials: '' },
  // Lenovo ThinkSystem SR645 wants more than 16 (LP:1993916).
  { name: 'alnum-20', length: 20, specials: '' },
  { name: 'mixed-20', length: 20, specials: '!_,?:' },
]);

/**
 * The alphabet every policy draws from (no I, O, l, 0 or 1, which read alike
 * on a console), and how many of each class a password holds at least.
 * Exported with the credential contract (service/credential-contract.json)
 * so the Python Ironic driver generates by the same rules.
 */
export const PASSWORD_ALPHABET = Object.freeze({
  upper: 'ABCDEFGHJKLMNPQRSTUVWXYZ',
  lower: 'abcdefghijkmnopqrstuvwxyz',
  digits: '23456789',
  perClass: 2,
});
const { upper: UPPER, lower: LOWER, digits: DIGITS } = PASSWORD_ALPHABET;

export interface GenerateOptions {
  /** Uniform integer in [0, max) — defaults to crypto.randomInt (CSPRNG). */
  randomInt?: (max: number) => number;
}

/** The policy indexes usable on a BMC whose password field holds at most `maxBytes`. */
export function policiesFor(maxBytes: 16 | 20): number[] {
  return PASSWORD_POLICIES.map((p, i) => ({ p, i })).filter(({ p }) => p.length <= maxBytes).map(({ i }) => i);
}

/**
 * Generates a password for `PASSWORD_POLICIES[policyIndex]` (default 0).
 * Characters are placed by class quota first, then shuffled until no two
 * neighbours are equal and the first is alphanumeric.
 */
export function generatePassword(policyIndex = 0, opts: GenerateOptions = {}): Secret {
  const policy = PASSWORD_POLICIES[policyIndex];
  if (!policy) throw new RangeError(`no password policy ${policyIndex} (0..${PASSWORD_POLICIES.length - 1})`);
  const rnd = opts.randomInt ?? ((max: number) => cryptoRandomInt(max));
  const pick = (set: string): number => set.charCodeAt(rnd(set.length));
  const all = UPPER + LOWER + DIGITS;
  const chars: number[] = [];
  for (let i = 0; i < PASSWORD_ALPHABET.perClass; i++) chars.push(pick(UPPER), pick(LOWER), pick(DIGITS));
  if (policy.specials) chars.push(pick(policy.specials));
  while (chars.length < policy.length) chars.push(pick(all));

  const isAlnum = (c: number | undefined): boolean => c !== undefined && all.includes(String.fromCharCode(c));
  const acceptable = (a: number[]): boolean => isAlnum(a[0]) && a.every((c, i) => i === 0 || c !== a[i - 1]);
  for (let attempt = 0; ; attempt++) {
    // Fisher–Yates with the injected generator.
    for (let i = chars.length - 1; i > 0; i--) {
      const j = rnd(i + 1);
      const t = chars[i] as number;
      chars[i] = chars[j] as number;
      chars[j] = t;
    }
    if (acceptable(chars)) break;
    if (attempt > 200) {
      // Pathological draws (e.g. many equal characters): redraw the free characters.
      for (let i = 3 * PASSWORD_ALPHABET.perClass + (policy.specials ? 1 : 0); i < chars.length; i++) chars[i] = pick(all);
      attempt = 0;
    }
  }
  const buf = Buffer.from(chars);
  chars.fill(0);
  const secret = Secret.fromBuffer(buf);
  buf.fill(0);
  return secret;
}
