/**
 * The optional state file: a restarted agent meets the same BMC; the file is
 * mode 0600 and holds passwords only as salted hashes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTransport } from '../../ipmi-kcs/simulated/index.js';
import { call, padded, STRONG, STRONG20 } from './sim-helpers.js';

describe('simulated BMC state file', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sim-bmc-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('is written at start and after each change, mode 0600, without plain-text passwords', async () => {
    const file = join(dir, 'a.json');
    const t = createSimulatedTransport({ stateFile: file });
    await call(t, 0x45, [3, ...padded('agent')]);
    await call(t, 0x47, [0x80 | 3, 0x02, ...padded(STRONG20, 20)]);
    // The answer comes after the write: the file already reflects it.
    const text = readFileSync(file, 'utf8');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(text.includes('"format"'));
    for (const secret of [STRONG20, 'admin', Buffer.from(STRONG20).toString('hex'), Buffer.from(STRONG20).toString('base64')]) {
      assert.ok(!text.includes(secret), 'no password (nor the factory one) in any plain encoding');
    }
    assert.ok(!text.includes(String([...Buffer.from(STRONG20)].slice(0, 3))), 'not as a byte array either');
    const doc = JSON.parse(text) as { state: { users: ({ password: { kdf?: { N: number; r: number } } } | null)[] } };
    for (const u of doc.state.users) if (u) assert.ok((u.password.kdf?.N ?? 0) >= 16384 && (u.password.kdf?.r ?? 0) >= 8, 'hashed at the at-rest cost');
    await t.close();
  });

  it('a restarted agent meets the same BMC; Test Password compares hashes', async () => {
    const file = join(dir, 'b.json');
    const t1 = createSimulatedTransport({ profile: 'dual-lan', stateFile: file });
    await call(t1, 0x45, [4, ...padded('agent')]);
    await call(t1, 0x47, [4, 0x02, ...padded(STRONG)]);
    await call(t1, 0x43, [0xb0 | 8, 4, 0x04, 0]);
    await call(t1, 0x47, [4, 0x01]);
    await call(t1, 0x40, [1, 0x82, 0x83]);
    const before = t1.bmc.snapshot();
    await t1.close();

    const t2 = createSimulatedTransport({ profile: 'dual-lan', stateFile: file });
    assert.deepEqual(await call(t2, 0x46, [4]), { cc: 0, data: padded('agent') });
    assert.equal((await call(t2, 0x47, [4, 0x03, ...padded(STRONG)])).cc, 0);
    assert.equal((await call(t2, 0x47, [4, 0x03, ...padded('Other!pass123')])).cc, 0x80);
    assert.equal((await call(t2, 0x44, [8, 4])).data[3], 0x34);
    assert.equal((await call(t2, 0x44, [1, 4])).data[3], 0x0f);
    assert.ok(t2.bmc.passwordMatches(4, STRONG));
    const after = t2.bmc.snapshot();
    assert.equal(after.users[3]?.password.bytes, undefined, 'bytes are not in the file');
    assert.equal(after.users[3]?.password.hash, before.users[3]?.password.hash);
    assert.deepEqual(after.channelAccess, before.channelAccess);
    await t2.close();
  });

  it('refuses a state file of another profile, or one that is not a state file', () => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ format: 'inband-agent/simulated-bmc-state/1', profile: 'ipmi15', state: { users: [], channelAccess: {} }, nonVolatile: { users: [], channelAccess: {} } }), { mode: 0o600 });
    assert.throws(() => createSimulatedTransport({ profile: 'ipmi20', stateFile: file }), /belongs to profile "ipmi15"/);
    const good = join(dir, 'c2.json');
    writeFileSync(good, readFileSync(file, 'utf8').replace('"ipmi15"', '"ipmi20"'));
    assert.throws(() => createSimulatedTransport({ profile: 'ipmi20', stateFile: good }), /does not match profile "ipmi20": user slots/);
    writeFileSync(join(dir, 'd.json'), '{"hello":1}');
    assert.throws(() => createSimulatedTransport({ stateFile: join(dir, 'd.json') }), /not a simulated BMC state file/);
    writeFileSync(join(dir, 'e.json'), 'not json');
    assert.throws(() => createSimulatedTransport({ stateFile: join(dir, 'e.json') }), /state file/);
  });

  it('a write failure surfaces as a transport error of that request', async () => {
    const t = createSimulatedTransport({ stateFile: join(dir, 'missing-dir', 'f.json') });
    await assert.rejects(call(t, 0x45, [3, ...padded('agent')]), (e: Error & { code?: string }) => e.name === 'IpmiTransportError' && e.code === 'EIO');
    await t.close();
  });
});
