/**
 * One contract for every SecretStore (file, Barbican): the same sequence of
 * pending → current → superseded/failed → deleted, run against each.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { generatePassword } from '../../service/password-generator.js';
import { Secret } from '../../service/secret.js';
import { SecretStoreError, type SecretStore } from '../../conductor/secret-store.js';
import { recordSecret } from '../helpers/secrets.js';

export interface ContractOptions {
  skip?: string | false;
  /** A fresh store for each test. */
  make: () => Promise<SecretStore>;
}

const node = (): string => `node-${randomBytes(4).toString('hex')}`;
const pw = (): Secret => {
  const s = generatePassword(0);
  recordSecret(s.reveal());
  return s;
};

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof SecretStoreError && e.code === code);
}

export function secretStoreContract(opts: ContractOptions): void {
  const skip = opts.skip ?? false;

  it('keeps a pending entry that is not current until marked', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const s = pw();
    const e = await store.putPending(n, 'ironic', s);
    assert.equal(e.state, 'pending');
    assert.equal(e.node, n);
    assert.equal(e.username, 'ironic');
    assert.equal(await store.getCurrent(n), null);
    const h = await store.history(n);
    assert.deepEqual(h.map((x) => [x.id, x.state]), [[e.id, 'pending']]);
    assert.ok((await store.getSecret(n, e.id)).equals(s), 'the pending value reads back');
  });

  it('marks current, supersedes the previous current, keeps history oldest first', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const a = pw();
    const b = pw();
    const ea = await store.putPending(n, 'ironic', a);
    await store.markCurrent(n, ea.id);
    let cur = await store.getCurrent(n);
    assert.ok(cur && cur.secret.equals(a) && cur.entry.id === ea.id && cur.entry.state === 'current');
    const eb = await store.putPending(n, 'ironic_b', b);
    assert.ok((await store.getCurrent(n))?.secret.equals(a), 'a pending entry does not replace the current one');
    await store.markCurrent(n, eb.id);
    cur = await store.getCurrent(n);
    assert.ok(cur && cur.secret.equals(b) && cur.entry.username === 'ironic_b');
    const h = await store.history(n);
    assert.deepEqual(h.map((x) => [x.id, x.state]), [[ea.id, 'superseded'], [eb.id, 'current']]);
    assert.ok((await store.getSecret(n, ea.id)).equals(a), 'a superseded value stays readable until deleted');
    // Idempotent: marking the current entry current again changes nothing.
    await store.markCurrent(n, eb.id);
    assert.deepEqual((await store.history(n)).map((x) => x.state), ['superseded', 'current']);
  });

  it('marks a failed rotation failed with a note, and refuses to make it current', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const e = await store.putPending(n, 'ironic', pw());
    const f = await store.markFailed(n, e.id, 'clean failed at set_bmc_credentials');
    assert.equal(f.state, 'failed');
    assert.equal(f.note, 'clean failed at set_bmc_credentials');
    await rejectsWith(store.markCurrent(n, e.id), 'INVALID_STATE');
    assert.equal(await store.getCurrent(n), null);
    assert.equal((await store.history(n))[0]?.note, 'clean failed at set_bmc_credentials');
  });

  it('deletes superseded and failed values, keeping the newest `keep` superseded', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const e = await store.putPending(n, i % 2 ? 'ironic_b' : 'ironic', pw());
      await store.markCurrent(n, e.id);
      ids.push(e.id);
    }
    const failed = await store.putPending(n, 'ironic_b', pw());
    await store.markFailed(n, failed.id, 'x');
    assert.equal(await store.deleteSuperseded(n, { keep: 1 }), 2, 'oldest superseded + the failed one');
    assert.deepEqual((await store.history(n)).map((x) => [x.id, x.state]), [[ids[1], 'superseded'], [ids[2], 'current']]);
    assert.equal(await store.deleteSuperseded(n), 1);
    assert.deepEqual((await store.history(n)).map((x) => x.id), [ids[2]]);
    await rejectsWith(store.getSecret(n, ids[0] as string), 'NOT_FOUND');
    assert.ok(await store.getCurrent(n), 'the current entry survives');
  });

  it('removes a pending or failed entry (never the current one); a node left empty is gone', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const cur = await store.putPending(n, 'ironic', pw());
    await store.markCurrent(n, cur.id);
    const pending = await store.putPending(n, 'ironic_b', pw());
    await store.removeEntry(n, pending.id);
    assert.deepEqual((await store.history(n)).map((x) => x.id), [cur.id]);
    await rejectsWith(store.getSecret(n, pending.id), 'NOT_FOUND');
    await rejectsWith(store.removeEntry(n, cur.id), 'INVALID_STATE');
    await rejectsWith(store.removeEntry(node(), cur.id), 'NOT_FOUND');
    const lone = node();
    const f = await store.putPending(lone, 'ironic', pw());
    await store.markFailed(lone, f.id, 'x');
    await store.removeEntry(lone, f.id);
    assert.deepEqual(await store.history(lone), []);
  });

  it('keeps nodes apart and refuses unknown ids and bad node idents', { skip }, async () => {
    const store = await opts.make();
    const n1 = node();
    const n2 = node();
    const e1 = await store.putPending(n1, 'ironic', pw());
    await store.markCurrent(n1, e1.id);
    assert.equal(await store.getCurrent(n2), null);
    assert.deepEqual(await store.history(n2), []);
    await rejectsWith(store.getSecret(n2, e1.id), 'NOT_FOUND');
    await rejectsWith(store.markCurrent(n2, e1.id), 'NOT_FOUND');
    await assert.rejects(async () => store.history('../etc'), (e: unknown) => e instanceof SecretStoreError && e.code === 'BAD_REQUEST');
  });

  it('never shows a value in an entry, its JSON or an error', { skip }, async () => {
    const store = await opts.make();
    const n = node();
    const s = pw();
    const e = await store.putPending(n, 'ironic', s);
    const text = JSON.stringify([e, await store.history(n)]);
    assert.ok(!text.includes(s.reveal()));
    const err = await store.markCurrent(n, 'f'.repeat(16)).catch((x: Error) => x);
    assert.ok(err instanceof Error && !String(err.message).includes(s.reveal()));
  });
}
