/**
 * Test harness: a real Keystone 22 from Debian (`python3-keystone`) on a free
 * loopback port: sqlite, fernet tokens, `keystone-manage bootstrap` (admin
 * user, project and role, the identity endpoint), served by its WSGI app
 * (`keystone.server.wsgi.initialize_public_application`) in a wsgiref
 * server, one request at a time (sqlite). No Apache, no `keystone` service package. Installed by
 * scripts/install-keystone.sh.
 *
 * - The admin password goes to `keystone-manage bootstrap` in its environment
 *   (OS_BOOTSTRAP_PASSWORD), never in argv.
 * - Set-up (db_sync, fernet keys, bootstrap) takes ~10–20 s on 2 cores; start
 *   one Keystone per test file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort, SYSTEM_PYTHON } from './ironic.js';

const KEYSTONE_MANAGE = '/usr/bin/keystone-manage';

const SHIM = `import os, socketserver, sys
from wsgiref import simple_server
port = int(sys.argv[1])
os.environ['OS_KEYSTONE_CONFIG_FILES'] = sys.argv[2]
del sys.argv[1:]  # keystone parses the command line as its own options
from keystone.server import wsgi
app = wsgi.initialize_public_application()
# One request at a time: sqlite refuses concurrent writers ("database is locked").
class Server(simple_server.WSGIServer):
    request_queue_size = 64
class Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write('ACCESS %s\\n' % (fmt % args))
srv = simple_server.make_server('127.0.0.1', port, app, server_class=Server, handler_class=Handler)
print('keystone listening on 127.0.0.1:%d' % port, flush=True)
srv.serve_forever()
`;

function conf(state: string): string {
  return `[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///${state}/keystone.sqlite

[token]
provider = fernet

[fernet_tokens]
key_repository = ${state}/fernet-keys

[fernet_receipts]
key_repository = ${state}/fernet-receipts

[credential]
key_repository = ${state}/credential-keys
`;
}

/** Whether Debian's Keystone and openstack CLI are usable; the reason when not. */
export function keystoneAvailability(): { available: boolean; reason: string } {
  if (!existsSync(KEYSTONE_MANAGE)) return { available: false, reason: `${KEYSTONE_MANAGE} is missing (run scripts/install-keystone.sh)` };
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import keystone.server.wsgi, openstackclient.shell, ironicclient'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return { available: false, reason: `python3-keystone/openstackclient/ironicclient not importable (run scripts/install-keystone.sh): ${(r.stderr || '').trim().split('\n').pop()}` };
  return { available: true, reason: 'python3-keystone importable by /usr/bin/python3' };
}

export interface KeystoneCredential {
  username: string;
  password: string;
  project: string;
}

export class Keystone {
  private readonly chunks: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(readonly url: string, readonly stateDir: string, readonly admin: KeystoneCredential, private readonly child: ChildProcess) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const keep = (d: Buffer): void => {
      this.chunks.push(d.toString('utf8'));
      if (this.chunks.length > 4000) this.chunks.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** The identity endpoint clients authenticate against (`OS_AUTH_URL`). */
  get authUrl(): string {
    return `${this.url}/v3`;
  }

  static async start(opts: { adminPassword?: string; readyTimeoutMs?: number } = {}): Promise<Keystone> {
    const avail = keystoneAvailability();
    if (!avail.available) throw new Error(avail.reason);
    const state = await mkdtemp(join(tmpdir(), 'keystone-'));
    for (const d of ['fernet-keys', 'fernet-receipts', 'credential-keys']) await mkdir(join(state, d), { mode: 0o700 });
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    const file = join(state, 'keystone.conf');
    await writeFile(file, conf(state), { mode: 0o600 });
    await writeFile(join(state, 'run-keystone.py'), SHIM);
    const admin = { username: 'admin', password: opts.adminPassword ?? `ks-${randomBytes(12).toString('base64url')}`, project: 'admin' };
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: state };
    const user = String(process.getuid?.() ?? 0);
    const group = String(process.getgid?.() ?? 0);
    const manage = (args: string[], extraEnv: Record<string, string> = {}): void => {
      const r = spawnSync(SYSTEM_PYTHON, [KEYSTONE_MANAGE, '--config-file', file, ...args], { encoding: 'utf8', timeout: 180_000, env: { ...env, ...extraEnv } });
      if (r.status !== 0) throw new Error(`keystone-manage ${args[0]} failed (${r.status}): ${(r.stderr || '').slice(-2000)}`);
    };
    try {
      manage(['db_sync']);
      manage(['fernet_setup', '--keystone-user', user, '--keystone-group', group]);
      manage(['credential_setup', '--keystone-user', user, '--keystone-group', group]);
      manage(['bootstrap', '--bootstrap-username', admin.username, '--bootstrap-project-name', admin.project,
        '--bootstrap-role-name', 'admin', '--bootstrap-service-name', 'keystone', '--bootstrap-region-id', 'RegionOne',
        '--bootstrap-admin-url', `${url}/v3`, '--bootstrap-public-url', `${url}/v3`, '--bootstrap-internal-url', `${url}/v3`],
      { OS_BOOTSTRAP_PASSWORD: admin.password });
      // WAL: a read transaction Keystone leaves open on one pooled connection
      // would otherwise block the next write for sqlite's 5 s and fail it
      // ("database is locked").
      const wal = spawnSync(SYSTEM_PYTHON, ['-c', 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal").fetchone()[0])', join(state, 'keystone.sqlite')], { encoding: 'utf8' });
      if (wal.status !== 0 || wal.stdout.trim() !== 'wal') throw new Error(`could not put Keystone's sqlite in WAL mode: ${wal.stderr}`);
    } catch (err) {
      await rm(state, { recursive: true, force: true });
      throw err;
    }
    const child = spawn(SYSTEM_PYTHON, [join(state, 'run-keystone.py'), String(port), file], { stdio: ['ignore', 'pipe', 'pipe'], env });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    const ks = new Keystone(url, state, admin, child);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await fetch(`${url}/v3`)).status === 200) return ks;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const log = ks.log();
    await ks.stop();
    throw new Error(`Keystone did not come up: ${log.slice(-3000)}`);
  }

  /** A project-scoped token for `cred` (default the admin), from POST /v3/auth/tokens. */
  async token(cred: KeystoneCredential = this.admin): Promise<string> {
    const r = await fetch(`${this.url}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: cred.username, domain: { id: 'default' }, password: cred.password } } },
          scope: { project: { name: cred.project, domain: { id: 'default' } } },
        },
      }),
    });
    if (r.status !== 201) throw new Error(`Keystone refused a token for ${cred.username}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.headers.get('x-subject-token') as string;
  }

  /** Registers a service and its public/internal/admin endpoints at `url` in the catalog. */
  async addService(type: string, name: string, url: string): Promise<void> {
    const token = await this.token();
    const call = async (path: string, body: unknown): Promise<Record<string, Record<string, string>>> => {
      const r = await fetch(`${this.url}/v3/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token }, body: JSON.stringify(body) });
      if (r.status !== 201) throw new Error(`Keystone POST /v3/${path}: ${r.status} ${(await r.text()).slice(0, 300)}`);
      return (await r.json()) as Record<string, Record<string, string>>;
    };
    const svc = (await call('services', { service: { type, name, enabled: true } })).service as Record<string, string>;
    for (const iface of ['public', 'internal', 'admin']) {
      await call('endpoints', { endpoint: { service_id: svc.id, interface: iface, url, region_id: 'RegionOne', enabled: true } });
    }
  }

  /** The `[keystone_authtoken]` section for a service that validates tokens as `cred` (default the admin). */
  authtokenConf(cred: KeystoneCredential = this.admin): string {
    return `[keystone_authtoken]
www_authenticate_uri = ${this.authUrl}
auth_url = ${this.authUrl}
auth_type = password
username = ${cred.username}
password = ${cred.password}
user_domain_name = Default
project_name = ${cred.project}
project_domain_name = Default
`;
  }

  /** Environment for the openstack CLI (password auth, no token on argv). */
  clientEnv(cred: KeystoneCredential = this.admin): Record<string, string> {
    return {
      OS_AUTH_URL: this.authUrl, OS_AUTH_TYPE: 'password', OS_USERNAME: cred.username, OS_PASSWORD: cred.password,
      OS_PROJECT_NAME: cred.project, OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3', OS_REGION_NAME: 'RegionOne', OS_INTERFACE: 'public',
    };
  }

  log(): string {
    return this.chunks.join('');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
    await rm(this.stateDir, { recursive: true, force: true });
  }
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});
