/**
 * conductor/seal.ts (sealing a BMC password to the agent's auto-TLS
 * certificate) against agent/tls/sealing-key.ts (opening it with the key that
 * stays in the agent's memory): the two halves of one format.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { SealedValueError, SealingKey } from '../../agent/tls/sealing-key.js';
import { pinnedCertificate, recipientFromCertificate, SealError, sealPassword, type SealedValue } from '../../conductor/seal.js';
import { Secret } from '../../service/secret.js';

const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const OTHER_NODE = '2be26c0b-03f2-4d2e-ae87-c02d7f33c456';
const PW = 'Xy7_kP2m,Qa9?Rt4';

function agent(): { certPem: string; key: SealingKey } {
  const c = generateSelfSigned({ address: '127.0.0.1', commonName: 'node-1' });
  return { certPem: c.certPem, key: new SealingKey(c.key) };
}

const expect = { purpose: 'set_bmc_credentials', user: 'ironic_b', node: NODE };

describe('sealed step arguments', () => {
  it('round trip: what the conductor seals to the certificate, the agent opens with its key', () => {
    const a = agent();
    const r = recipientFromCertificate(a.certPem);
    assert.equal(r.kid, a.key.kid);
    assert.equal(r.curve, 'P-384');
    const sealed = sealPassword(r, Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    const opened = a.key.open(sealed, expect);
    assert.equal(opened.reveal(), PW);
    assert.equal(`${opened}`, '***');
  });

  it('the sealed object holds no plain text of the password, and two seals differ', () => {
    const a = agent();
    const r = recipientFromCertificate(a.certPem);
    const s1 = sealPassword(r, Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    const s2 = sealPassword(r, Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    for (const s of [s1, s2]) {
      const text = JSON.stringify(s);
      assert.ok(!text.includes(PW));
      for (const enc of ['base64', 'base64url', 'hex'] as const) assert.ok(!text.includes(Buffer.from(PW).toString(enc)), enc);
      assert.deepEqual(Object.keys(s).sort(), ['alg', 'ct', 'epk', 'iv', 'kid', 'node', 'nonce', 'purpose', 'tag', 'user', 'v']);
    }
    assert.notEqual(s1.ct, s2.ct);
    assert.notEqual(s1.epk.x, s2.epk.x);
  });

  it('a value sealed to another agent is refused naming the key', () => {
    const a = agent();
    const b = agent();
    const sealed = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    assert.throws(() => b.key.open(sealed, expect), (e: Error) => e instanceof SealedValueError && /another agent key/.test(e.message) && !e.message.includes(PW));
    // Even with the key id forged to match, the other key does not open it.
    assert.throws(() => b.key.open({ ...sealed, kid: b.key.kid }, expect), /does not open/);
  });

  it('a value sealed for another node is refused, and relabelling the node does not open it', () => {
    const a = agent();
    const sealed = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: OTHER_NODE, user: 'ironic_b' });
    assert.throws(() => a.key.open(sealed, expect), /sealed for node 2be26c0b.*serves node 1be26c0b/);
    assert.throws(() => a.key.open({ ...sealed, node: NODE }, expect), /does not open/);
  });

  it('another user or purpose is refused; relabelling them does not open it', () => {
    const a = agent();
    const sealed = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic' });
    assert.throws(() => a.key.open(sealed, expect), /sealed for BMC user "ironic"/);
    assert.throws(() => a.key.open({ ...sealed, user: 'ironic_b' }, expect), /does not open/);
    const other = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b', purpose: 'something_else' });
    assert.throws(() => a.key.open(other, expect), /not "set_bmc_credentials"/);
    assert.throws(() => a.key.open({ ...other, purpose: 'set_bmc_credentials' }, expect), /does not open/);
  });

  it('tampered ciphertext, tag, iv, nonce or ephemeral key do not open', () => {
    const a = agent();
    const sealed = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    const flip = (b64: string): string => {
      const b = Buffer.from(b64, 'base64url');
      b[0] = b[0]! ^ 1;
      return b.toString('base64url');
    };
    const other = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    const variants: SealedValue[] = [
      { ...sealed, ct: flip(sealed.ct) }, { ...sealed, tag: flip(sealed.tag) }, { ...sealed, iv: flip(sealed.iv) },
      { ...sealed, nonce: flip(sealed.nonce) }, { ...sealed, epk: other.epk },
    ];
    for (const v of variants) assert.throws(() => a.key.open(v, expect), (e: Error) => e instanceof SealedValueError && !e.message.includes(PW));
    assert.throws(() => a.key.open({ ...sealed, epk: { ...sealed.epk, x: sealed.epk.y } }, expect), SealedValueError);
    // The untouched value still opens.
    assert.equal(a.key.open(sealed, expect).reveal(), PW);
  });

  it('a value opened once is refused the second time (replay to the same agent)', () => {
    const a = agent();
    const sealed = sealPassword(recipientFromCertificate(a.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    assert.equal(a.key.open(sealed, expect).reveal(), PW);
    assert.throws(() => a.key.open(sealed, expect), /already used/);
  });

  it('works on P-256 too; refuses an RSA certificate and unreadable pins', async () => {
    const c = generateSelfSigned({ address: '127.0.0.1', commonName: 'n', curve: 'p256' });
    const k = new SealingKey(c.key);
    const sealed = sealPassword(recipientFromCertificate(c.certPem), Secret.fromString(PW), { node: NODE, user: 'ironic_b' });
    assert.equal(k.open(sealed, expect).reveal(), PW);
    assert.throws(() => recipientFromCertificate('not a pem'), SealError);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => new SealingKey(rsa.privateKey), TypeError);

    assert.equal(await pinnedCertificate({}), null);
    assert.equal(await pinnedCertificate(undefined), null);
    assert.deepEqual(await pinnedCertificate({ agent_verify_ca: '/pins/x.crt' }, async (p) => (p === '/pins/x.crt' ? c.certPem : '')), { pem: c.certPem, source: '/pins/x.crt' });
    assert.equal((await pinnedCertificate({ agent_verify_ca: c.certPem }))?.pem, c.certPem);
    await assert.rejects(pinnedCertificate({ agent_verify_ca: '/nonexistent/pin.crt' }), /cannot be read here \(ENOENT\).*--agent-cert/);
  });
});
