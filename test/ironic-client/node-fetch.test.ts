/**
 * TLS to the conductor: the node:https fetch used for `ipa-insecure` (and an
 * operator CA), and a whole lookup + heartbeat over https with the default fetch
 * the entry point picks.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { defaultFetch, startIronicClient } from '../../agent/ironic/index.js';
import { createNodeFetch } from '../../agent/ironic/node-fetch.js';
import type { Inventory } from '../../agent/inventory/types.js';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { AgentTokenStore } from '../../agent/token.js';
import { recordSecret } from '../helpers/secrets.js';
import { lookupOk, rootDoc } from './fake-ironic.js';

const TOKEN = recordSecret('tls-' + 'k'.repeat(40));
const NODE = '6c1b2a9e-0000-4000-8000-000000000001';
const cert = generateSelfSigned({ address: '127.0.0.1', commonName: 'conductor' });

let server: https.Server;
let url = '';
const seen: string[] = [];

before(async () => {
  server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      const reply = path === '/' ? { status: 200, body: rootDoc('1.82') } : path === '/v1/lookup' ? lookupOk(NODE, TOKEN) : { status: 202 };
      const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'Content-Type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('node:https fetch', () => {
  it('refuses a certificate it cannot verify', async () => {
    await assert.rejects(createNodeFetch()(`${url}/`, {}), /self[- ]signed|unable to verify|certificate/i);
  });
  it('accepts it with insecure, and with the CA given', async () => {
    assert.equal((await createNodeFetch({ insecure: true })(`${url}/`, {})).status, 200);
    const r = await createNodeFetch({ ca: cert.certPem })(`${url}/`, { headers: { Accept: 'application/json' } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(await r.text()).default_version.version, '1.82');
    assert.equal(r.headers.get('content-type'), 'application/json');
  });
  it('is what the entry point picks for an https API URL with insecure set, and global fetch otherwise', () => {
    assert.notEqual(defaultFetch({ api_url: ['https://x'], insecure: true }), fetch);
    assert.equal(defaultFetch({ api_url: ['https://x'] }), fetch);
    assert.equal(defaultFetch({ api_url: ['http://x'], insecure: true }), fetch);
  });
});

describe('conductor client over https', () => {
  it('looks up and heartbeats through an insecure https API URL with the default fetch', async () => {
    const tokens = new AgentTokenStore();
    const inv = { interfaces: [{ mac_address: '52:54:00:00:00:77' }] } as unknown as Inventory;
    const lines: string[] = [];
    const log = (m: string) => void lines.push(m);
    const handle = await startIronicClient({
      config: { api_url: [url], insecure: true },
      logger: { error: log, warn: log, info: log, debug: log },
      tokens,
      advertiseUrl: () => 'https://127.0.0.1:9999',
      getVerifyCa: () => undefined,
      collectInventory: async () => inv,
    });
    try {
      const deadline = Date.now() + 10_000;
      while (!seen.some((s) => s.startsWith('POST /v1/heartbeat/')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.includes(`POST /v1/heartbeat/${NODE}`), seen.join(', '));
      assert.equal(tokens.reveal(), TOKEN);
    } finally {
      await handle.stop();
    }
    assert.ok(!lines.join('\n').includes(TOKEN));
  });
});
