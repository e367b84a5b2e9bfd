/**
 * The embedded secret store: one JSON file, no server.
 *
 * - Each password is sealed with AES-256-GCM under a 32-byte key read from a key
 *   file (created 0600 and whole when absent; refused when group or others may
 *   read it). The additional authenticated data binds a ciphertext to its node
 *   and entry id, so a value copied to another node's entry does not decrypt.
 * - The store file is 0600 and always replaced atomically: written to a temp
 *   file in the same directory, fsync'd, renamed over the old one, then the
 *   directory is fsync'd — a crash leaves the old file or the new, never half.
 * - Node names, user names, states and times are plain (they are what an
 *   operator needs to read a failure record); passwords never are.
 *
 * One writer at a time: operations of one FileSecretStore are serialised, and
 * every read-modify-write holds `<path>.lock` (holding the owner's pid from the
 * moment it exists; a lock whose owner is gone is taken over), so rotations of
 * different nodes run by separate CLI processes do not lose each other's entries.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Secret } from '../service/secret.js';
import { checkNode, deletable, SecretStoreError, transition, type SecretEntry, type SecretStore } from './secret-store.js';
import { makeDir } from '../service/journal.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'inband-conductor-secrets/1';

interface Sealed {
  iv: string;
  tag: string;
  ct: string;
}

type StoredEntry = SecretEntry & { value: Sealed };

interface StoreFile {
  format: typeof FORMAT;
  nodes: Record<string, StoredEntry[]>;
}

export interface FileSecretStoreOptions {
  /** The store file (created on first write). */
  path: string;
  /** The key file; default `<path>.key`. */
  keyPath?: string;
  now?: () => Date;
  /** Tests only: pauses at the lock's two racy moments (a stale owner judged; the lock just taken). */
  lockHooks?: LockHooks;
}

export interface LockHooks {
  staleJudged?(): Promise<void>;
  locked?(): Promise<void>;
}

export class FileSecretStore implements SecretStore {
  readonly kind = 'file' as const;
  readonly path: string;
  readonly keyPath: string;
  private readonly now: () => Date;
  private readonly hooks: LockHooks;
  private key: Buffer | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: FileSecretStoreOptions) {
    this.path = opts.path;
    this.keyPath = opts.keyPath ?? `${opts.path}.key`;
    this.now = opts.now ?? (() => new Date());
    this.hooks = opts.lockHooks ?? {};
  }

  putPending(node: string, username: string, secret: Secret): Promise<SecretEntry> {
    checkNode(node);
    if (!username) throw new SecretStoreError('BAD_REQUEST', 'username is required');
    return this.mutate(async (file, key) => {
      const at = this.now().toISOString();
      const id = randomBytes(8).toString('hex');
      const entry: SecretEntry = { id, node, username, state: 'pending', createdAt: at, updatedAt: at };
      const list = file.nodes[node] ?? (file.nodes[node] = []);
      list.push({ ...entry, value: seal(key, node, id, secret) });
      return entry;
    });
  }

  markCurrent(node: string, id: string): Promise<SecretEntry> {
    return this.change(node, id, 'current');
  }

  markFailed(node: string, id: string, note: string): Promise<SecretEntry> {
    return this.change(node, id, 'failed', note);
  }

  async getCurrent(node: string): Promise<{ entry: SecretEntry; secret: Secret } | null> {
    checkNode(node);
    return this.serial(async () => {
      const file = await this.load();
      const cur = (file.nodes[node] ?? []).find((e) => e.state === 'current');
      if (!cur) return null;
      return { entry: strip(cur), secret: unseal(await this.loadKey(), node, cur) };
    });
  }

  async getSecret(node: string, id: string): Promise<Secret> {
    checkNode(node);
    return this.serial(async () => {
      const file = await this.load();
      const e = (file.nodes[node] ?? []).find((x) => x.id === id);
      if (!e) throw new SecretStoreError('NOT_FOUND', `no secret entry ${id} for node ${node}`);
      return unseal(await this.loadKey(), node, e);
    });
  }

  async history(node: string): Promise<SecretEntry[]> {
    checkNode(node);
    return this.serial(async () => ((await this.load()).nodes[node] ?? []).map(strip));
  }

  removeEntry(node: string, id: string): Promise<void> {
    checkNode(node);
    return this.mutate(async (file) => {
      const list = file.nodes[node] ?? [];
      const e = list.find((x) => x.id === id);
      if (!e) throw new SecretStoreError('NOT_FOUND', `no secret entry ${id} for node ${node}`);
      if (e.state === 'current') throw new SecretStoreError('INVALID_STATE', `entry ${id} is current; it is not removed`);
      const rest = list.filter((x) => x.id !== id);
      if (rest.length) file.nodes[node] = rest;
      else delete file.nodes[node];
    });
  }

  deleteSuperseded(node: string, opts: { keep?: number } = {}): Promise<number> {
    checkNode(node);
    return this.mutate(async (file) => {
      const list = file.nodes[node] ?? [];
      const gone = new Set(deletable(list, opts.keep).map((e) => e.id));
      file.nodes[node] = list.filter((e) => !gone.has(e.id));
      return gone.size;
    });
  }

  private change(node: string, id: string, to: 'current' | 'failed', note?: string): Promise<SecretEntry> {
    checkNode(node);
    return this.mutate(async (file) => {
      const list = file.nodes[node] ?? [];
      const next = transition(list.map(strip), id, to, this.now().toISOString(), note);
      const values = new Map(list.map((e) => [e.id, e.value]));
      file.nodes[node] = next.map((e) => ({ ...e, value: values.get(e.id) as Sealed }));
      return next.find((e) => e.id === id) as SecretEntry;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private mutate<T>(fn: (file: StoreFile, key: Buffer) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      const key = await this.loadKey(true);
      const release = await this.lock();
      try {
        const file = await this.load();
        const result = await fn(file, key);
        await this.save(file);
        return result;
      } finally {
        await release();
      }
    });
  }

  /**
   * Cross-process lock: `<path>.lock`, holding its owner's pid from the moment
   * it exists ({@link createWhole}). Created with O_EXCL and written after, a
   * rotator killed in between left an empty lock that no later run could tell
   * stale, and every run after it waited out its timeout. A lock whose owner
   * is not running is removed; so is an empty one older than
   * {@link EMPTY_LOCK_STALE_MS} (left by a version that wrote the pid second).
   * Removal goes through {@link takeOver}: two waiters that both judged the
   * same lock stale must not both remove "it", or the second removes the
   * first one's fresh lock and both write the store at once.
   */
  private async lock(timeoutMs = 15_000): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    await makeDir(dirname(this.path));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await createWhole(lockPath, String(process.pid))) {
        await this.hooks.locked?.();
        return () => unlink(lockPath).catch(() => undefined);
      }
      const text = await readFile(lockPath, 'utf8').catch(() => null);
      const owner = Number((text ?? '').trim());
      const stale = text !== null && ((owner > 0 && owner !== process.pid && !alive(owner)) ||
        (text === '' && Date.now() - ((await stat(lockPath).catch(() => null))?.mtimeMs ?? Date.now()) > EMPTY_LOCK_STALE_MS));
      if (stale) {
        await this.hooks.staleJudged?.();
        await takeOver(lockPath, text);
        continue;
      }
      if (Date.now() > deadline) throw new SecretStoreError('UNAVAILABLE', `secret store ${this.path} is locked by process ${owner || '?'} (${lockPath})`);
      await sleepJitter();
    }
  }

  private async load(): Promise<StoreFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { format: FORMAT, nodes: {} };
      throw new SecretStoreError('UNAVAILABLE', `cannot read secret store ${this.path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SecretStoreError('CORRUPT', `secret store ${this.path} is not JSON`);
    }
    const f = parsed as StoreFile;
    if (!f || f.format !== FORMAT || typeof f.nodes !== 'object' || f.nodes === null) {
      throw new SecretStoreError('CORRUPT', `secret store ${this.path} is not a ${FORMAT} file`);
    }
    return f;
  }

  /** Atomic replace: temp file (0600, O_EXCL) + fsync + rename + directory fsync. */
  private async save(file: StoreFile): Promise<void> {
    const dir = dirname(this.path);
    await makeDir(dir);
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(JSON.stringify(file, null, 1) + '\n');
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    const d = await open(dir, fsc.O_RDONLY);
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /** Reads the key file; with `create`, makes one (0600, {@link createWhole}) when absent. */
  private async loadKey(create = false): Promise<Buffer> {
    if (this.key) return this.key;
    let st;
    try {
      st = await stat(this.keyPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!create) throw new SecretStoreError('NOT_FOUND', `key file ${this.keyPath} is missing`);
      await makeDir(dirname(this.keyPath));
      // Whole or not at all; when another process made it first, theirs is used.
      await createWhole(this.keyPath, randomBytes(KEY_BYTES), true);
      st = await stat(this.keyPath);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new SecretStoreError('DENIED', `key file ${this.keyPath} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    const key = await readFile(this.keyPath);
    if (key.length !== KEY_BYTES) throw new SecretStoreError('CORRUPT', `key file ${this.keyPath} must hold ${KEY_BYTES} bytes`);
    this.key = key;
    return key;
  }
}

/**
 * Creates `path` (0600) holding `data` from the moment it exists, unless
 * something is there: the bytes go to a file of this process's own first
 * (fsync'd when `durable`), which is then hard-linked to `path` (link(2)
 * fails with EEXIST when a file is there). Created with O_EXCL and written
 * after, a process killed in between left an empty file, and one that lost the
 * race could read it before it was written. Returns whether this call made it.
 */
async function createWhole(path: string, data: string | Buffer, durable = false): Promise<boolean> {
  const mine = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const fh = await open(mine, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await link(mine, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/**
 * Removes the stale lock `lockPath` whose content was `judged`, under a guard
 * (`<lock>.takeover`, made whole like the lock): only the guard's holder
 * removes a lock, and only after reading, under the guard, the same content
 * it judged stale. A waiter that lost the race reads the new owner's pid
 * instead and leaves the lock alone. The guard is held for one read and one
 * unlink; one whose holder died in between (dead pid, older than
 * {@link GUARD_STALE_MS}) is removed. What stays possible: two waiters
 * removing the same dead guard at once, which needs a process to die inside
 * those two syscalls while two others wait.
 */
async function takeOver(lockPath: string, judged: string): Promise<void> {
  const guard = `${lockPath}.takeover`;
  if (!(await createWhole(guard, String(process.pid)))) {
    const text = await readFile(guard, 'utf8').catch(() => null);
    const owner = Number((text ?? '').trim());
    const age = Date.now() - ((await stat(guard).catch(() => null))?.mtimeMs ?? Date.now());
    if (text !== null && age > GUARD_STALE_MS && !(owner > 0 && alive(owner))) await unlink(guard).catch(() => undefined);
    else await sleepJitter();
    return;
  }
  try {
    if ((await readFile(lockPath, 'utf8').catch(() => null)) === judged) await unlink(lockPath).catch(() => undefined);
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

const GUARD_STALE_MS = 2_000;

function sleepJitter(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 30)));
}

/** An empty lock file this old was left by a writer killed before it wrote its pid (an older version's lock). */
const EMPTY_LOCK_STALE_MS = 2_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function aad(node: string, id: string): Buffer {
  return Buffer.from(`${FORMAT}\0${node}\0${id}`, 'utf8');
}

function seal(key: Buffer, node: string, id: string, secret: Secret): Sealed {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad(node, id));
  const plain = secret.copyBytes();
  try {
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
  } finally {
    plain.fill(0);
  }
}

function unseal(key: Buffer, node: string, e: StoredEntry): Secret {
  if (!e.value) throw new SecretStoreError('NOT_FOUND', `entry ${e.id} holds no value`);
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(e.value.iv, 'base64'));
    d.setAAD(aad(node, e.id));
    d.setAuthTag(Buffer.from(e.value.tag, 'base64'));
    const plain = Buffer.concat([d.update(Buffer.from(e.value.ct, 'base64')), d.final()]);
    const s = Secret.fromBuffer(plain);
    plain.fill(0);
    return s;
  } catch {
    throw new SecretStoreError('CORRUPT', `entry ${e.id} of node ${node} does not decrypt with ${'this key'} (wrong key file or tampered entry)`);
  }
}

function strip(e: StoredEntry | SecretEntry): SecretEntry {
  const { id, node, username, state, createdAt, updatedAt, note } = e;
  return { id, node, username, state, createdAt, updatedAt, ...(note !== undefined ? { note } : {}) };
}
