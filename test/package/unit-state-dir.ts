/**
 * Where the packaged agent keeps its crash journal, read from the files an
 * image builder installs: the unit (systemd/inband-agent.service), the config
 * its ExecStart names (scripts/package/agent.json, installed as
 * /etc/inband-agent/agent.json), the unit's EnvironmentFile and the built-in
 * default. The journal must be in the unit's StateDirectory= (kept across a
 * stop), never in its RuntimeDirectory= (removed on every stop, a
 * Restart=on-failure included: exactly the restart the journal exists for).
 */
import { posix } from 'node:path';

/** `Key=value` settings of a unit file, per key in order (continuation lines and comments handled). */
export function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const joined = text.replace(/\\\n/g, ' ');
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    // An empty assignment resets list settings (systemd.exec(5)).
    if (value === '') out.set(key, []);
    else out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** systemd.exec(5): StateDirectory= and RuntimeDirectory= are relative to /var/lib and /run for system units. */
function dirs(settings: Map<string, string[]>, key: string, base: string): string[] {
  return (settings.get(key) ?? []).flatMap((v) => v.split(/\s+/)).map((d) => posix.join(base, d.split(':')[0] ?? d));
}

const inside = (dir: string, parent: string): boolean => dir === parent || dir.startsWith(`${parent}/`);

export interface StateDirVerdict {
  stateDir: string;
  /** Where it came from: `--state-dir` in ExecStart, the environment file, the config file, or the default. */
  source: string;
  stateDirectories: string[];
  runtimeDirectories: string[];
  /** Empty when the state dir is inside a StateDirectory= and outside every RuntimeDirectory= systemd removes. */
  problems: string[];
}

/**
 * Resolves the journal's directory the way the agent does for the packaged
 * unit (flags > environment > config file > default; the kernel command line
 * is the node's, not the package's) and checks it against the unit.
 */
export function packagedStateDir(opts: {
  unit: string;
  /** Reads a file the unit names (the config, the EnvironmentFile); undefined if absent. */
  readFile: (path: string) => string | undefined;
  defaultStateDir: string;
}): StateDirVerdict {
  const s = unitSettings(opts.unit);
  const problems: string[] = [];
  const exec = (s.get('ExecStart') ?? []).at(-1) ?? '';
  const argv = exec.replace(/^[-@:+!]+/, '').split(/\s+/);
  const flag = (name: string): string | undefined => {
    const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
    if (i < 0) return undefined;
    return argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1];
  };
  let stateDir = opts.defaultStateDir;
  let source = 'the built-in default';
  const configPath = flag('--config');
  if (configPath) {
    const text = opts.readFile(configPath);
    if (text === undefined) problems.push(`ExecStart names --config ${configPath}, which the package does not install`);
    else {
      const cfg = JSON.parse(text) as { state_dir?: unknown };
      if (typeof cfg.state_dir === 'string') {
        stateDir = cfg.state_dir;
        source = configPath;
      }
    }
  }
  for (const envFile of s.get('EnvironmentFile') ?? []) {
    const text = opts.readFile(envFile.replace(/^-/, ''));
    const m = text === undefined ? null : /^\s*INBAND_AGENT_STATE_DIR=(.*)$/m.exec(text);
    if (m) {
      stateDir = m[1]!.trim().replace(/^["']|["']$/g, '');
      source = envFile.replace(/^-/, '');
    }
  }
  for (const env of (s.get('Environment') ?? []).flatMap((v) => v.split(/\s+/))) {
    if (env.startsWith('INBAND_AGENT_STATE_DIR=')) {
      stateDir = env.slice('INBAND_AGENT_STATE_DIR='.length);
      source = 'Environment=';
    }
  }
  const flagged = flag('--state-dir');
  if (flagged) {
    stateDir = flagged;
    source = 'ExecStart --state-dir';
  }
  const stateDirectories = dirs(s, 'StateDirectory', '/var/lib');
  const runtimeDirectories = dirs(s, 'RuntimeDirectory', '/run');
  const preserved = (s.get('RuntimeDirectoryPreserve') ?? []).at(-1) === 'yes';
  if (!stateDirectories.some((d) => inside(stateDir, d))) {
    problems.push(`state_dir ${stateDir} (from ${source}) is not inside the unit's StateDirectory= (${stateDirectories.join(' ') || 'none'})`);
  }
  const removed = runtimeDirectories.find((d) => inside(stateDir, d));
  if (removed && !preserved) problems.push(`state_dir ${stateDir} is inside RuntimeDirectory= ${removed}, which systemd removes on every stop (Restart= included)`);
  return { stateDir, source, stateDirectories, runtimeDirectories, problems };
}
