/**
 * `inband-agent conductor serve` in-process: usage errors exit 2 before
 * anything listens; a running service prints its status line, writes the
 * self-signed certificate it serves (and not its key), answers the callback,
 * keeps the records behind CONDUCTOR_AUTH_TOKEN, mounts the rotation passthru
 * only with that token, and stops on its signal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../conductor/cli.js';
import { SERVE_USAGE } from '../../conductor/serve.js';
import { recordSecret } from '../helpers/secrets.js';

async function run(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), env });
  return { code, out, err };
}

function request(url: string, ca: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  const u = new URL(url + path);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode as number, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('conductor serve CLI', () => {
  it('refuses bad usage with exit 2 and prints its help', async () => {
    const help = await run({}, 'conductor', 'serve', '--help');
    assert.deepEqual(help, { code: 0, out: SERVE_USAGE + '\n', err: '' });
    const cases: [string[], RegExp][] = [
      [[], /--ironic-url is required/],
      [['--ironic-url', 'ftp://x'], /http\(s\) URL/],
      [['--ironic-url', 'http://127.0.0.1:1', '--listen', 'nope'], /HOST:PORT/],
      [['--ironic-url', 'http://127.0.0.1:1', '--bmc-port', '0'], /1-65535/],
      [['--ironic-url', 'http://127.0.0.1:1', '--tls-cert-file', '/x'], /go together/],
      [['--ironic-url', 'http://127.0.0.1:1', '--store', 'vault'], /--store must be one of file, barbican \(got "vault"\)/],
      [['--ironic-url', 'http://127.0.0.1:1', '--username', 'a', '--username-b', 'a'], /must differ/],
      [['--ironic-url', 'http://127.0.0.1:1', '--password', 'x'], /unknown option --password \(see --help\)/],
      [['--ironic-url', 'http://127.0.0.1:1', 'stray'], /serve takes no arguments/],
      [['--ironic-url', 'http://127.0.0.1:1', '--max-pending', '0'], /--max-pending must be a whole number >= 1/],
      [['--ironic-url', 'http://127.0.0.1:1', '--inventories-per-minute', 'lots'], /--inventories-per-minute must be/],
    ];
    for (const [argv, re] of cases) {
      const r = await run({}, 'conductor', 'serve', ...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, re, argv.join(' '));
    }
  });

  for (const token of [undefined, recordSecret(`svc-token-${Math.random().toString(36).slice(2)}`)]) {
    it(`serves over TLS with its own certificate${token ? ', passthru and records behind the token' : ', no passthru without a token'}`, async () => {
      const work = mkdtempSync(join(tmpdir(), 'discovery-cli-'));
      const ac = new AbortController();
      let out = '';
      let err = '';
      const env = { ...(token ? { CONDUCTOR_AUTH_TOKEN: token } : {}) };
      const done = main(['conductor', 'serve', '--ironic-url', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--store-path', join(work, 'secrets.json')], {
        stdout: (s) => (out += s), stderr: (s) => (err += s), env, signal: ac.signal,
      });
      try {
        for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 25));
        const status = JSON.parse(out.split('\n')[0] as string) as { listening: string; certificate: string; fingerprint: string };
        assert.match(status.listening, /^https:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(status.certificate, join(work, 'discovery-cert.pem'));
        const ca = readFileSync(status.certificate, 'utf8');
        assert.match(ca, /BEGIN CERTIFICATE/);
        const files = readdirSync(work, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath ?? d.path, d.name));
        assert.ok(!files.map((f) => readFileSync(f, 'utf8')).join('').includes('PRIVATE KEY'), 'the TLS key stays in memory');

        // An inventory without a BMC address: recorded, answered without credentials.
        const cont = await request(status.listening, ca, 'POST', '/v1/continue', { 'Content-Type': 'application/json' }, JSON.stringify({ inventory: { interfaces: [], bmc_address: '0.0.0.0' } }));
        assert.equal(cont.status, 200);
        assert.ok(!('bmc_credentials' in JSON.parse(cont.text)));

        const anon = await request(status.listening, ca, 'GET', '/v1/discoveries');
        assert.equal(anon.status, 401, 'records need the token');
        const pt = await request(status.listening, ca, 'GET', '/v1/nodes/n1/vendor_passthru/methods', token ? { 'X-Auth-Token': token } : {});
        if (token) {
          assert.equal(pt.status, 200);
          assert.ok('set_bmc_credentials' in JSON.parse(pt.text));
          const recs = await request(status.listening, ca, 'GET', '/v1/discoveries', { 'X-Auth-Token': token });
          assert.equal(recs.status, 200);
          assert.equal((JSON.parse(recs.text) as { discoveries: Array<{ failedStep: string }> }).discoveries[0]?.failedStep, 'receive-inventory');
        } else {
          assert.equal(pt.status, 404, 'no passthru without CONDUCTOR_AUTH_TOKEN');
        }
      } finally {
        ac.abort();
        assert.equal(await done, 0, err);
        rmSync(work, { recursive: true, force: true });
      }
      if (token) assert.ok(!err.includes(token) && !out.includes(token));
    });
  }
});
