import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format, inspect } from 'node:util';
import { generatePassword, PASSWORD_POLICIES, policiesFor } from '../../service/password-generator.js';
import { Secret } from '../../service/secret.js';
import { ServiceError } from '../../service/errors.js';
import { recordSecret } from '../helpers/secrets.js';

const PW = recordSecret('Sekr1t-Value_42');

test('a Secret prints as *** in every way a value gets printed or serialised', () => {
  const s = Secret.fromString(PW);
  const renderings = [
    String(s), `${s}`, 'x' + s, s.toString(), JSON.stringify(s), JSON.stringify({ password: s }),
    inspect(s), inspect({ nested: { s } }, { depth: 10, showHidden: true }), format('%s %o %O %j', s, s, s, { s }),
    new ServiceError('BMC_ERROR', `failed with ${s}`, { details: { s } }).message,
    JSON.stringify(new ServiceError('BMC_ERROR', 'x', { details: { s } })),
  ];
  for (const r of renderings) {
    assert.ok(!r.includes(PW), `leaked: ${r}`);
  }
  assert.ok(renderings.every((r) => r.includes('***')));
  assert.deepEqual(Object.keys(s), []);
});

test('reveal, length in bytes, equals (constant time) and dispose', () => {
  const s = Secret.fromString(PW);
  assert.equal(s.reveal(), PW);
  assert.equal(s.length, Buffer.byteLength(PW));
  assert.ok(s.equals(Secret.fromString(PW)));
  assert.ok(!s.equals(Secret.fromString(PW + 'x')));
  const buf = Buffer.from(PW);
  const t = Secret.fromBuffer(buf);
  buf.fill(0);
  assert.equal(t.reveal(), PW, 'fromBuffer copies');
  const copy = t.copyBytes();
  copy.fill(0);
  assert.equal(t.reveal(), PW, 'copyBytes hands out a copy');
  t.dispose();
  t.dispose();
  assert.ok(t.disposed);
  assert.throws(() => t.reveal(), /disposed/);
  assert.equal(String(t), '***');
});

function checkPassword(pw: string, length: number, specials: string): void {
  assert.equal(pw.length, length);
  assert.match(pw, /^[A-Za-z0-9]/, 'first character alphanumeric (early OpenBMC)');
  assert.ok(/[A-Z].*[A-Z]/.test(pw) && /[a-z].*[a-z]/.test(pw) && /[0-9].*[0-9]/.test(pw), `classes mixed: ${pw.length}`);
  assert.ok(!/(.)\1/.test(pw), 'no two identical adjacent characters');
  for (const c of pw) assert.ok(/[A-Za-z0-9]/.test(c) || specials.includes(c), 'only the policy\'s characters');
  if (specials) assert.ok([...pw].some((c) => specials.includes(c)), 'a special character');
  assert.ok(!pw.includes('\0'));
}

test('generated passwords satisfy their policy (length, classes, charset, no adjacent repeats)', () => {
  for (let i = 0; i < PASSWORD_POLICIES.length; i++) {
    const p = PASSWORD_POLICIES[i]!;
    const seen = new Set<string>();
    for (let n = 0; n < 200; n++) {
      const s = generatePassword(i);
      const pw = s.reveal();
      checkPassword(pw, p.length, p.specials);
      seen.add(pw);
    }
    assert.equal(seen.size, 200, 'no repeats across 200 draws (CSPRNG)');
  }
  assert.throws(() => generatePassword(PASSWORD_POLICIES.length), RangeError);
});

test('policies that fit the BMC: 16-byte ones only on IPMI 1.5, 16-byte ones first on 2.0', () => {
  assert.deepEqual(policiesFor(16).map((i) => PASSWORD_POLICIES[i]!.length), [16, 16]);
  const v2 = policiesFor(20).map((i) => PASSWORD_POLICIES[i]!.length);
  assert.deepEqual(v2, [16, 16, 20, 20]);
});

test('a low-quality generator (short cycle) still yields a valid password', () => {
  let k = 0;
  const s = generatePassword(0, { randomInt: (max) => (k++ % 7) % max });
  checkPassword(s.reveal(), 16, PASSWORD_POLICIES[0]!.specials);
});
