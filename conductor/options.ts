/**
 * What the conductor's commands share (rotate, serve, the fleet): the I/O they
 * are given, where their state lives, the secret store the --store options
 * name, tokens from the environment, and how a record is kept. In a module of
 * its own so that cli.ts, serve.ts and fleet-cli.ts need not import each other.
 */
import { constants as fsc } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../service/secret.js';
import { BarbicanSecretStore } from './barbican-store.js';
import { FileSecretStore } from './file-store.js';
import type { RotationRecord } from './rotate.js';
import type { SecretStore } from './secret-store.js';
import { makeDir } from '../service/journal.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Ends `serve` (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Standard input, read whole (the fleet's --initial-password-stdin); default process.stdin. */
  readStdin?: () => Promise<string>;
  /** Whether stderr is a terminal (the fleet's progress line); default process.stderr.isTTY. */
  stderrIsTTY?: boolean;
}

/** The conductor's state directory: $XDG_STATE_HOME (or ~/.local/state)/inband-conductor. */
export function stateDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'inband-conductor');
}

/** A token from the environment: the named variable, else OS_AUTH_TOKEN. Tokens never come from arguments. */
export function envToken(env: NodeJS.ProcessEnv, name: string): Secret | undefined {
  const t = env[name] || env.OS_AUTH_TOKEN;
  return t ? Secret.fromString(t) : undefined;
}

export interface StoreOptions {
  store?: string;
  'store-path'?: string;
  'barbican-url'?: string;
  'barbican-project-id'?: string;
}

/** The secret store `--store` names (rotate and serve share the options), or the usage error. */
export function storeFromOptions(v: StoreOptions, env: NodeJS.ProcessEnv): { store: SecretStore; storePath: string } | { usage: string } {
  const storePath = v['store-path'] ?? join(stateDir(env), 'secrets.json');
  if (v.store === 'file') return { store: new FileSecretStore({ path: storePath }), storePath };
  if (v.store !== 'barbican') return { usage: '--store is file or barbican' };
  if (!v['barbican-url']) return { usage: '--store barbican needs --barbican-url' };
  const bt = envToken(env, 'BARBICAN_AUTH_TOKEN');
  if (!bt && !v['barbican-project-id']) return { usage: 'Barbican needs BARBICAN_AUTH_TOKEN/OS_AUTH_TOKEN or --barbican-project-id' };
  const auth = { ...(bt ? { token: bt } : {}), ...(v['barbican-project-id'] ? { projectId: v['barbican-project-id'] } : {}) };
  return { store: new BarbicanSecretStore({ url: v['barbican-url'], auth }), storePath };
}

export async function writeRecord(dir: string, record: RotationRecord): Promise<string> {
  await makeDir(dir);
  const base = `${(record.nodeUuid ?? record.node).replace(/[^A-Za-z0-9._-]/g, '_')}-${record.startedAt.replace(/[:.]/g, '-')}.json`;
  const file = join(dir, base);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    await fh.writeFile(JSON.stringify(record, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return file;
}
