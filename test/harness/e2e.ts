/**
 * What the real-Ironic end-to-end files share: where the project is, how a
 * word goes into the shell command an Ironic node's "ramdisk" runs, a pause,
 * and the switch that runs them (INBAND_TEST_IRONIC=1, after
 * scripts/install-ironic.sh and npm run build).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout (the directory whose package.json is inband-agent's), from test/ or from dist/test/. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p) && JSON.parse(readFileSync(p, 'utf8')).name === 'inband-agent') return dir;
    dir = dirname(dir);
  }
  throw new Error('project root not found');
}

/** One word for sh, single-quoted: `it's` -> `'it'\''s'`. */
export const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The shell command an ipmi_sim node runs when Ironic powers it on: this
 * repository's agent as a ramdisk would start it, looking up with `apiUrl`,
 * listening on 127.0.0.1:`port`, talking to its BMC over VM codec (the
 * node's ipmi_sim sets $NODE_VM_PORT), its output appended to `logFile`.
 * `extra` flags go after the standard ones.
 */
export function agentRamdiskCommand(o: { apiUrl: string; port: number; stateDir: string; logFile: string; extra?: readonly string[] }): string {
  return [
    'exec', sh(process.execPath), sh(join(projectRoot(), 'bin', 'inband-agent.js')), 'serve',
    '--api-url', sh(o.apiUrl),
    '--listen-host', '127.0.0.1', '--listen-port', String(o.port),
    '--advertise-host', '127.0.0.1', '--advertise-port', String(o.port),
    '--lookup-timeout', '120', '--state-dir', sh(o.stateDir), '--log-level', 'debug',
    '--backend', 'vm-codec', '--vm-codec', '"127.0.0.1:$NODE_VM_PORT"',
    ...(o.extra ?? []),
    '>>', sh(o.logFile), '2>&1',
  ].join(' ');
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const IRONIC_E2E = process.env.INBAND_TEST_IRONIC === '1';

/** node:test's `skip` for a real-Ironic file: false when enabled, else how to enable it. */
export function skipUnlessIronic(what: string, installs = 'scripts/install-ironic.sh'): false | string {
  return IRONIC_E2E ? false : `${what}: set INBAND_TEST_IRONIC=1 (after ${installs} and npm run build) to run ${what.endsWith('tests') ? 'them' : 'it'}`;
}
