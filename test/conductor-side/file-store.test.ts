/**
 * FileSecretStore: the store contract, plus what only a file store must prove —
 * the password never appears in the file, 0600 files, an over-permissive key
 * file is refused, a tampered entry or another key does not decrypt, and writes
 * leave no temp files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileSecretStore } from '../../conductor/file-store.js';
import { SecretStoreError } from '../../conductor/secret-store.js';
import { generatePassword } from '../../service/password-generator.js';
import { recordSecret } from '../helpers/secrets.js';
import { secretStoreContract } from './secret-store-contract.js';

const dirs: string[] = [];
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'file-store-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('FileSecretStore: store contract', () => {
  secretStoreContract({ make: async () => new FileSecretStore({ path: join(fresh(), 'secrets.json') }) });
});

describe('FileSecretStore: at rest', () => {
  it('encrypts: the plain password is nowhere in the store file; files are 0600; no temp files stay', async () => {
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    const store = new FileSecretStore({ path });
    const s = generatePassword(0);
    const plain = recordSecret(s.reveal());
    const e = await store.putPending('node-1', 'ironic', s);
    await store.markCurrent('node-1', e.id);
    const raw = readFileSync(path);
    assert.ok(!raw.includes(Buffer.from(plain)), 'plain password absent from the store file');
    assert.ok(!raw.includes(Buffer.from(Buffer.from(plain).toString('base64'))), 'not merely base64-encoded either');
    assert.ok(!readFileSync(`${path}.key`).includes(Buffer.from(plain)));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}.key`).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}.key`).size, 32);
    assert.deepEqual(readdirSync(dir).sort(), ['secrets.json', 'secrets.json.key'], 'no lock or temp file stays');
    // Another instance (a later CLI run) reads it back with the key file.
    const again = new FileSecretStore({ path });
    assert.ok((await again.getCurrent('node-1'))?.secret.equals(s));
  });

  it('refuses a key file that group or others can read', async () => {
    const path = join(fresh(), 'secrets.json');
    const store = new FileSecretStore({ path });
    await store.putPending('node-1', 'ironic', generatePassword(0));
    chmodSync(`${path}.key`, 0o644);
    const other = new FileSecretStore({ path });
    await assert.rejects(other.history('node-1').then(() => other.putPending('node-1', 'x', generatePassword(0))),
      (e: unknown) => e instanceof SecretStoreError && e.code === 'DENIED' && /chmod 600/.test(e.message));
  });

  it('a tampered entry, an entry moved to another node, or another key does not decrypt', async () => {
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    const store = new FileSecretStore({ path });
    const e = await store.putPending('node-1', 'ironic', generatePassword(0));
    const f = JSON.parse(readFileSync(path, 'utf8'));
    // moved to another node: the AAD binds node and id
    f.nodes['node-2'] = f.nodes['node-1'];
    writeFileSync(path, JSON.stringify(f), { mode: 0o600 });
    const reread = new FileSecretStore({ path });
    await assert.rejects(reread.getSecret('node-2', e.id), (x: unknown) => x instanceof SecretStoreError && x.code === 'CORRUPT');
    assert.ok(await reread.getSecret('node-1', e.id));
    // another key
    const otherKey = join(dir, 'other.key');
    writeFileSync(otherKey, Buffer.alloc(32, 7), { mode: 0o600 });
    const wrong = new FileSecretStore({ path, keyPath: otherKey });
    await assert.rejects(wrong.getSecret('node-1', e.id), (x: unknown) => x instanceof SecretStoreError && x.code === 'CORRUPT');
  });

  it('writers in separate processes do not lose each other\'s entries; a stale lock is taken over', async () => {
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    // A lock left by a process that is gone (pid far above pid_max's usual range is not running).
    writeFileSync(`${path}.lock`, '4194000', { mode: 0o600 });
    const child = `
      const { FileSecretStore } = await import(${JSON.stringify(new URL('../../conductor/file-store.js', import.meta.url).href)});
      const { Secret } = await import(${JSON.stringify(new URL('../../service/secret.js', import.meta.url).href)});
      const s = new FileSecretStore({ path: process.argv[1] });
      for (let i = 0; i < 10; i++) await s.putPending('node-' + process.argv[2], 'ironic', Secret.fromString('Child-secret-' + i));
    `;
    const runChild = (n: string): Promise<number | null> => new Promise((res) => {
      const c = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', child, path, n], { stdio: 'inherit' });
      c.once('exit', (code) => res(code));
    });
    const store = new FileSecretStore({ path });
    // The key exists before the children race to create it.
    await store.putPending('node-main', 'ironic', generatePassword(0));
    const [a, b] = await Promise.all([runChild('a'), runChild('b')]);
    assert.deepEqual([a, b], [0, 0]);
    assert.equal((await store.history('node-a')).length, 10);
    assert.equal((await store.history('node-b')).length, 10);
    assert.equal((await store.history('node-main')).length, 1);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.lock') || f.endsWith('.tmp')), 'no lock, and none of the writers\' pid files');
  });

  it('two writers that both find a stale lock do not both take it: the second does not remove the first one\'s fresh lock', async () => {
    // The interleaving a timer cannot force: both writers judge the dead
    // owner's lock stale before either removes it; the first then takes the
    // lock, and the second is let go while the first holds it. Before the
    // takeover guard, the second one's unlink removed the first one's fresh
    // lock and both were inside at once.
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    const seed = new FileSecretStore({ path });
    await seed.putPending('node-main', 'ironic', generatePassword(0));
    writeFileSync(`${path}.lock`, '4194000', { mode: 0o600 });
    const gates: Array<() => void> = [];
    let bothJudged!: () => void;
    const judged = new Promise<void>((r) => (bothJudged = r));
    const staleJudged = (): Promise<void> => new Promise<void>((go) => {
      gates.push(go);
      if (gates.length === 2) bothJudged();
    });
    let firstInside = false;
    let overlapped = false;
    let holders = 0;
    const locked = async (): Promise<void> => {
      holders++;
      if (holders === 1) {
        firstInside = true;
        gates[1]!(); // the second writer goes on while the first holds the lock
        await new Promise((r) => setTimeout(r, 150));
        firstInside = false;
      } else if (firstInside) {
        overlapped = true;
      }
    };
    const a = new FileSecretStore({ path, lockHooks: { staleJudged, locked } });
    const b = new FileSecretStore({ path, lockHooks: { staleJudged, locked } });
    const wa = a.putPending('node-a', 'ironic', generatePassword(0));
    const wb = b.putPending('node-b', 'ironic', generatePassword(0));
    await judged;
    gates[0]!();
    await Promise.all([wa, wb]);
    assert.equal(overlapped, false, 'the two writers were never inside the lock at once');
    assert.equal(holders, 2);
    assert.equal((await seed.history('node-a')).length, 1, 'the first writer\'s entry is kept');
    assert.equal((await seed.history('node-b')).length, 1, 'the second writer\'s entry is kept');
    assert.ok(!readdirSync(dir).some((f) => f.includes('.lock')), 'no lock or takeover guard stays');
  });

  it('two processes that find no key file agree on one key: neither reads it before it is whole', async () => {
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    const child = `
      const { FileSecretStore } = await import(${JSON.stringify(new URL('../../conductor/file-store.js', import.meta.url).href)});
      const { Secret } = await import(${JSON.stringify(new URL('../../service/secret.js', import.meta.url).href)});
      const s = new FileSecretStore({ path: process.argv[1] });
      await s.putPending('node-' + process.argv[2], 'ironic', Secret.fromString('Child-secret-' + process.argv[2]));
    `;
    const runChild = (n: string): Promise<number | null> => new Promise((res) => {
      const c = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', child, path, n], { stdio: 'inherit' });
      c.once('exit', (code) => res(code));
    });
    assert.deepEqual(await Promise.all(['a', 'b', 'c', 'd'].map(runChild)), [0, 0, 0, 0]);
    const store = new FileSecretStore({ path });
    for (const n of ['a', 'b', 'c', 'd']) {
      const [entry] = await store.history(`node-${n}`);
      assert.equal((await store.getSecret(`node-${n}`, entry!.id)).reveal(), `Child-secret-${n}`, 'every entry opens with the one key');
    }
    assert.equal(statSync(`${path}.key`).size, 32);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.key.') || f.includes('.lock')), 'no key or lock temp files stay');
  });

  it('an empty lock, left by a writer killed before its pid was in it, is taken over once it is old', async () => {
    // A rotator SIGKILLed between creating the lock and writing its pid (the
    // store's older locking) left such a file, and every later run waited out
    // its timeout on it. The lock now holds its pid from the moment it exists.
    const dir = fresh();
    const path = join(dir, 'secrets.json');
    const store = new FileSecretStore({ path });
    await store.putPending('node-main', 'ironic', generatePassword(0));
    writeFileSync(`${path}.lock`, '', { mode: 0o600 });
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(`${path}.lock`, old, old);
    // Not taken over, this would wait out the lock's timeout and fail UNAVAILABLE.
    await store.putPending('node-main', 'ironic_b', generatePassword(0));
    assert.equal((await store.history('node-main')).length, 2);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.lock')));
  });

  it('a corrupt store file is reported, not overwritten', async () => {
    const path = join(fresh(), 'secrets.json');
    writeFileSync(path, '{"half": ', { mode: 0o600 });
    const store = new FileSecretStore({ path });
    await assert.rejects(store.putPending('node-1', 'ironic', generatePassword(0)), (x: unknown) => x instanceof SecretStoreError && x.code === 'CORRUPT');
    assert.equal(readFileSync(path, 'utf8'), '{"half": ');
  });
});

describe('FileSecretStore: an unusable directory', () => {
  // Node 20's recursive mkdir never returns for a path under /proc (it retries
  // the ENOENT it gets there forever); a conductor pointed at such a path must
  // fail the first write with the reason, not hang with a pending secret.
  it('a store under /proc fails its first write with an error naming the path, and nothing is kept', async () => {
    const store = new FileSecretStore({ path: '/proc/inband-nope/secrets.json' });
    await assert.rejects(store.putPending('node-1', 'ironic', generatePassword(0)), (err: Error) => /\/proc\/inband-nope/.test(err.message) || /ENOENT/.test(String((err as NodeJS.ErrnoException).code ?? err.message)));
    assert.equal(readdirSync('/proc').includes('inband-nope'), false);
  });
});
