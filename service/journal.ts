/**
 * The change journal: written (mode 0600, fsync'd) before the first write to
 * the BMC and removed once the change is verified or rolled back. If the
 * process dies in between, the next start finds it and restores the slot.
 *
 * It holds the slot's previous state and the target — never the password. Its
 * exclusive creation (O_EXCL) is also the lock that keeps two processes sharing
 * a state directory (the daemon and the local CLI) from changing users at once.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import type { AccessStore, ChannelAccess, UserChannelAccess } from './ipmi-commands.js';

export const JOURNAL_FILE = 'credential-change.journal.json';

// node:fs's callbacks, promisified, rather than node:fs/promises: this module is
// on the daemon's way to listening (checkStateDir), and node:fs/promises would
// be loaded there for it alone.
const stat = promisify(fs.stat);
const mkdir = promisify(fs.mkdir);
const open = promisify(fs.open);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
const unlink = promisify(fs.unlink);
const readFile = promisify(fs.readFile);
const writeFile = promisify(fs.writeFile);

export interface SlotSnapshot {
  userId: number;
  /** '' for an empty slot. */
  name: string;
  enabled: boolean;
  /** 'status' = Get User Access enable status (v2.0); 'ipmi-messaging' = inferred where the BMC leaves it unspecified. */
  enabledSource: 'status' | 'ipmi-messaging';
  /** Per LAN channel. */
  access: Record<string, UserChannelAccess>;
}

export interface ChannelAccessSnapshot {
  channel: number;
  stores: Partial<Record<AccessStore, ChannelAccess>>;
}

export interface JournalRecord {
  version: 1;
  /** Unique per change; also identifies the owning service instance within one process. */
  id: string;
  pid: number;
  bootId: string | null;
  startedAt: string;
  username: string;
  prior: SlotSnapshot;
  channelAccess: ChannelAccessSnapshot[];
}

/**
 * Creates `dir` and any missing parents (mode 0700), one level at a time.
 *
 * Not `mkdir(dir, { recursive: true })`: Node 20's recursive mkdir loops forever
 * (100% CPU, the promise never settles) where mkdir(2) answers ENOENT for a
 * parent that exists, as /proc and /sys do (`/proc/nope`). Here every level is
 * tried at most once, so the walk ends after as many steps as the path has
 * components, and the kernel's own error is what the caller sees.
 */
export async function makeDir(dir: string): Promise<string | undefined> {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let d = target; ; d = dirname(d)) {
    try {
      if (!(await stat(d)).isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw err;
      missing.push(d);
    }
  }
  // Like mkdir's recursive form, resolves with the first directory this call created.
  let first: string | undefined;
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, { mode: 0o700 });
      first ??= d;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return first;
}

/**
 * Checks, before anything is served or written to a BMC, that the change
 * journal can be kept in `dir`: creates it (0700) if missing and creates,
 * syncs and removes a probe file there. Throws an Error naming the directory
 * and the reason; a change that could not journal would have to be refused
 * anyway, and finding out at the first change is too late.
 */
export async function checkStateDir(dir: string): Promise<void> {
  const why = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  try {
    await makeDir(dir);
  } catch (err) {
    throw new Error(`state directory ${dir} is unusable: cannot create it (${why(err)}); the change journal that makes credential changes crash-safe lives there`, { cause: err });
  }
  // Unique enough with 'wx' (an existing name fails loudly), and no crypto on the daemon's way to listening.
  const probe = join(dir, `.probe-${process.pid}-${process.hrtime.bigint()}`);
  try {
    const fd = await open(probe, 'wx', 0o600);
    try {
      await fsync(fd);
    } finally {
      await close(fd);
    }
    await unlink(probe);
  } catch (err) {
    throw new Error(`state directory ${dir} is unusable: cannot write a file there (${why(err)}); the change journal that makes credential changes crash-safe lives there`, { cause: err });
  }
}

/** Changes begun by this process, for {@link journalId}. */
let begun = 0;

/**
 * Unique per change: this process's id, the monotonic clock and a counter. The
 * id only has to tell this process's changes apart (liveInThisProcess) and
 * name a change in the log; another process's journal is told apart by its
 * pid and boot id. Not randomUUID: a one-shot set-credentials would load
 * node:crypto for it alone (~3 ms on a fast CPU, more in a slow ramdisk VM).
 */
function journalId(): string {
  return `${process.pid}-${process.hrtime.bigint().toString(36)}-${++begun}`;
}

/** Journal ids of changes in progress in this process (several service instances may share it). */
const liveInThisProcess = new Set<string>();

let thisBoot: Promise<string | null> | undefined;

/** The kernel's boot id: read once per process (it cannot change under a running process; a readFile is four thread-pool hops). */
function bootId(): Promise<string | null> {
  thisBoot ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((t) => t.trim(), () => null);
  return thisBoot;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type JournalState =
  | { kind: 'none' }
  /** Written by a change that is still running (another live process, or another instance here). */
  | { kind: 'live'; record: JournalRecord }
  | { kind: 'interrupted'; record: JournalRecord }
  /** Unparseable: the process died while writing it, i.e. before any BMC write. */
  | { kind: 'torn' };

export class Journal {
  readonly path: string;
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = stateDir;
    this.path = join(stateDir, JOURNAL_FILE);
  }

  async inspect(): Promise<JournalState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw new Error(`cannot read the change journal ${this.path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
    let record: JournalRecord;
    try {
      record = JSON.parse(text) as JournalRecord;
      if (record?.version !== 1 || typeof record.prior?.userId !== 'number') return { kind: 'torn' };
    } catch {
      return { kind: 'torn' };
    }
    const sameBoot = record.bootId === null || record.bootId === (await bootId());
    const live = record.pid === process.pid ? liveInThisProcess.has(record.id) : sameBoot && pidAlive(record.pid);
    return live ? { kind: 'live', record } : { kind: 'interrupted', record };
  }

  /**
   * Creates the journal exclusively and makes it durable. Throws with code
   * EEXIST when one is already there.
   */
  async begin(fields: Omit<JournalRecord, 'version' | 'id' | 'pid' | 'bootId' | 'startedAt'>): Promise<JournalRecord> {
    const record: JournalRecord = { version: 1, id: journalId(), pid: process.pid, bootId: await bootId(), startedAt: new Date().toISOString(), ...fields };
    // The directory was checked at start (checkStateDir); it is made again only if it has gone since.
    let fd: number;
    try {
      fd = await open(this.path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await makeDir(this.dir);
      fd = await open(this.path, 'wx', 0o600);
    }
    try {
      await writeFile(fd, JSON.stringify(record, null, 2) + '\n', 'utf8');
      await fsync(fd);
    } finally {
      await close(fd);
    }
    liveInThisProcess.add(record.id);
    return record;
  }

  /** Marks `record` as no longer running in this process (it stays on disk until `remove`). */
  release(record: JournalRecord): void {
    liveInThisProcess.delete(record.id);
  }

  async remove(record?: JournalRecord): Promise<void> {
    if (record) liveInThisProcess.delete(record.id);
    try {
      await unlink(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
