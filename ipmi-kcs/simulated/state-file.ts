/**
 * Optional state file of the simulated BMC, so a restarted agent meets the
 * same BMC. JSON, mode 0600, replaced atomically (temp file + rename).
 * Passwords are in it only as salt + scrypt hash + size, hashed at AT_REST_COST
 * (see password-hash.ts).
 */
import { readFileSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import type { BmcState } from './bmc-state.js';

const FORMAT = 'inband-agent/simulated-bmc-state/1';

export interface PersistedBmc {
  profile: string;
  state: BmcState;
  nonVolatile: BmcState;
}

function revive(s: BmcState): BmcState {
  // JSON turns the unused index 0 of the user array into null.
  const users = s.users;
  if (!Array.isArray(users)) throw new Error('users missing');
  const out: BmcState = { users: [], channelAccess: s.channelAccess };
  users.forEach((u, i) => {
    if (u === null || u === undefined) return;
    if (u.id !== i || !Array.isArray(u.name) || u.name.length !== 16 || typeof u.password?.hash !== 'string') {
      throw new Error(`user ${i} malformed`);
    }
    out.users[i] = u;
  });
  return out;
}

/** Reads a state file; undefined when it does not exist. */
export function loadStateFile(path: string): PersistedBmc | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const doc = JSON.parse(text) as { format?: unknown } & Partial<PersistedBmc>;
    if (doc.format !== FORMAT || typeof doc.profile !== 'string' || !doc.state || !doc.nonVolatile) throw new Error('not a simulated BMC state file');
    return { profile: doc.profile, state: revive(doc.state), nonVolatile: revive(doc.nonVolatile) };
  } catch (err) {
    throw new Error(`simulated BMC state file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

let tmpCounter = 0;

export async function saveStateFile(path: string, doc: PersistedBmc): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  const body = JSON.stringify({ format: FORMAT, ...doc }, null, 1);
  try {
    await writeFile(tmp, body, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
