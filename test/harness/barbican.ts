/**
 * Test harness: a real, unmodified Barbican 15 from Debian (`python3-barbican`)
 * on a free loopback port, with sqlite (`db_auto_create`), the simple_crypto
 * plugin under a fresh master KEK, and the no-Keystone pipeline: identity comes
 * from `X-Project-Id` (+ optional `X-Roles`, `X-User-Id`). Installed by
 * scripts/install-barbican.sh.
 *
 * Why it looks like this (research run on this kind of machine):
 * - Debian's library package has no entry point that binds loopback or reads a
 *   config file we choose: barbican parses ~/.barbican and /etc/barbican at
 *   import, so a small shim re-parses CONF with our file, builds the app from
 *   our paste ini and serves it with a threaded wsgiref server (HTTP/1.0).
 * - It must run with /usr/bin/python3 (a pyenv python3 on PATH cannot see
 *   Debian's dist-packages).
 * - Start-up takes ~1–2 s.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort, SYSTEM_PYTHON } from './ironic.js';

const SHIM = `import argparse, os, socketserver, sys
from wsgiref import simple_server
ap = argparse.ArgumentParser()
ap.add_argument('--config-file', required=True)
ap.add_argument('--paste', required=True)
ap.add_argument('--port', type=int, required=True)
a = ap.parse_args()
from barbican.common import config as bconfig
bconfig.CONF(args=['--config-file', os.path.abspath(a.config_file)], project='barbican', prog='barbican')
from paste import deploy
app = deploy.loadapp('config:' + os.path.abspath(a.paste), name='main')
class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
class Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write('ACCESS %s\\n' % (fmt % args))
srv = simple_server.make_server('127.0.0.1', a.port, app, server_class=Server, handler_class=Handler)
print('barbican-api listening on 127.0.0.1:%d' % a.port, flush=True)
srv.serve_forever()
`;

const PASTE = `[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican_api

[pipeline:barbican_version]
pipeline = http_proxy_to_wsgi microversion versionapp

[pipeline:barbican_api]
pipeline = http_proxy_to_wsgi unauthenticated-context microversion apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:unauthenticated-context]
paste.filter_factory = barbican.api.middleware.context:UnauthenticatedContextMiddleware.factory

[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
`;

function conf(state: string, port: number, kek: string): string {
  return `[DEFAULT]
host_href = http://127.0.0.1:${port}
sql_connection = sqlite:///${state}/barbican.sqlite
db_auto_create = true
debug = false
use_stderr = true

[secretstore]
namespace = barbican.secretstore.plugin
enabled_secretstore_plugins = store_crypto

[crypto]
namespace = barbican.crypto.plugin
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = ${kek}

[queue]
enable = false

[keystone_notifications]
enable = false
`;
}

/** Whether Debian's Barbican is importable by the system Python; the reason when it is not. */
export function barbicanAvailability(): { available: boolean; reason: string } {
  if (!existsSync(SYSTEM_PYTHON)) return { available: false, reason: `${SYSTEM_PYTHON} is missing` };
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import barbican.api.app, paste.deploy'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    return { available: false, reason: `python3-barbican is not installed (run scripts/install-barbican.sh): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  }
  return { available: true, reason: 'python3-barbican importable by /usr/bin/python3' };
}

export class Barbican {
  private readonly chunks: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(readonly url: string, readonly stateDir: string, private readonly child: ChildProcess, readonly startMs: number) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const keep = (d: Buffer): void => {
      this.chunks.push(d.toString('utf8'));
      if (this.chunks.length > 2000) this.chunks.splice(0, 500);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(opts: { readyTimeoutMs?: number } = {}): Promise<Barbican> {
    const avail = barbicanAvailability();
    if (!avail.available) throw new Error(avail.reason);
    const t0 = Date.now();
    const state = await mkdtemp(join(tmpdir(), 'barbican-'));
    const port = await freeLoopbackPort();
    // A Fernet key: urlsafe base64 of 32 random bytes, with padding.
    const kek = randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    await writeFile(join(state, 'barbican.conf'), conf(state, port, kek), { mode: 0o600 });
    await writeFile(join(state, 'barbican-api-paste.ini'), PASTE);
    await writeFile(join(state, 'run-barbican.py'), SHIM);
    const child = spawn(SYSTEM_PYTHON, [join(state, 'run-barbican.py'), '--config-file', join(state, 'barbican.conf'), '--paste', join(state, 'barbican-api-paste.ini'), '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: state },
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    const b = new Barbican(url, state, child, 0);
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const r = await fetch(`${url}/v1/secrets?limit=1`, { headers: { 'X-Project-Id': 'healthcheck' } });
        if (r.status === 200) return new Barbican(url, state, child, Date.now() - t0).adopt(b);
      } catch {
        // not yet listening
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    const log = b.log();
    await b.stop();
    throw new Error(`Barbican did not come up: ${log.slice(-3000)}`);
  }

  private adopt(other: Barbican): this {
    this.chunks.push(...other.chunks);
    return this;
  }

  log(): string {
    return this.chunks.join('');
  }

  /** SIGTERM (SIGKILL after 5 s); removes the state directory unless kept. Idempotent. */
  async stop(opts: { keepState?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    if (!opts.keepState) await rm(this.stateDir, { recursive: true, force: true });
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});
