/**
 * The conductor client against the real Ironic from Debian (21.4, standalone,
 * noauth, sqlite; started by the test on free loopback ports):
 *   node manageable → lookup 404 with back-off → manual clean with the
 *   set_bmc_credentials step → clean wait → lookup finds the node and hands out
 *   the token → heartbeat 202 → Ironic records agent_url/agent_version and calls
 *   the agent back at callback_url with that token. A second agent without the
 *   token gets "******" and locks down.
 *
 * Needs `scripts/install-ironic.sh` (python3-ironic). Gated by INBAND_TEST_IRONIC=1,
 * which CI's Ironic stage sets; when set and Ironic is missing, the test fails.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startIronicClient, type IronicClientHandle } from '../../agent/ironic/index.js';
import type { Inventory } from '../../agent/inventory/types.js';
import { AgentTokenStore } from '../../agent/token.js';
import { Ironic } from '../harness/ironic.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

const enabled = process.env.INBAND_TEST_IRONIC === '1';
const skip = enabled ? false : 'real-Ironic test: set INBAND_TEST_IRONIC=1 (after scripts/install-ironic.sh) to run it';

const MAC = '52:54:00:e2:00:41';

function inventory(): Inventory {
  return {
    interfaces: [{ name: 'eth0', mac_address: MAC, ipv4_address: '127.0.0.1', ipv6_address: null, has_carrier: true, lldp: null, vendor: null,
      product: null, client_id: null, biosdevname: null, speed_mbps: null, pci_address: null, driver: null }],
    cpu: { model_name: null, frequency: null, count: 1, architecture: 'x86_64', flags: [], socket_count: null },
    disks: [],
    memory: { total: 1, physical_mb: 1 },
    bmc_address: null,
    bmc_v6address: null,
    system_vendor: { product_name: null, serial_number: null, manufacturer: null, firmware: { vendor: null, version: null, build_date: null } },
    boot: { current_boot_mode: 'bios', pxe_interface: MAC },
    hostname: 'ironic-e2e',
  };
}

class Lines {
  readonly lines: string[] = [];
  private add = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    this.lines.push(JSON.stringify({ level, message, ...(meta ?? {}) }));
  };
  error = this.add('error');
  warn = this.add('warn');
  info = this.add('info');
  debug = this.add('debug');
}

/** Stands where the agent's API would be: records what the conductor sends to callback_url. */
async function callbackRecorder(): Promise<{ url: string; seen: Array<{ method: string; path: string; token: string | null; body: string }>; close(): Promise<void> }> {
  const seen: Array<{ method: string; path: string; token: string | null; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push({ method: req.method ?? '', path: u.pathname, token: u.searchParams.get('agent_token'), body });
      // Not an agent: answer like IPA does to a command it cannot run, so Ironic stops here.
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ faultcode: 'Client', faultstring: 'Not found: recorder only' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('conductor client against the real Ironic', () => {
  let ironic: Ironic;
  const clients: IronicClientHandle[] = [];
  const started = Date.now();

  // Skipped per test (not per suite) so run summaries count the skips; the hooks then do nothing.
  before(async () => {
    if (skip) return;
    ironic = await Ironic.start();
    console.log(`# Ironic up after ${Date.now() - started} ms (dbsync + start)`);
  });

  after(async () => {
    for (const c of clients) await c.stop();
    if (ironic) await ironic.stop();
  });

  it('looks the node up once Ironic waits for it, heartbeats (202), and Ironic calls back with the token', { skip }, async () => {
    const node = await ironic.enroll({
      name: 'lookup-heartbeat', driver: 'fake-hardware', boot_interface: 'fake', deploy_interface: 'direct',
      power_interface: 'fake', management_interface: 'noop', network_interface: 'noop',
    }, [MAC]);
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable');

    const recorder = await callbackRecorder();
    const log = new Lines();
    const tokens = new AgentTokenStore();
    const client = await startIronicClient({
      config: { api_url: [ironic.url], lookup_timeout: 120 },
      logger: log,
      tokens,
      advertiseUrl: () => recorder.url,
      getVerifyCa: () => undefined,
      collectInventory: async () => inventory(),
    });
    clients.push(client);
    try {
      // manageable: lookup must answer 404 and the client keep trying.
      await waitUntil(() => log.lines.some((l) => l.includes('no node matches')), 15_000, 'a lookup 404 while manageable');

      // The step routed the way Ironic routes agent steps; accepted before any agent is up.
      await ironic.provision(node.uuid, 'clean', {
        clean_steps: [{ interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic-e2e', generate: true } }],
      });
      await waitUntil(() => client.client.phase === 'heartbeating', 60_000, 'lookup to succeed');
      assert.equal(client.nodeUuid, node.uuid);
      const token = tokens.reveal();
      assert.ok(token && token.length >= 32, 'token from the first lookup');
      recordSecret(token);

      await waitUntil(() => (client.client.heartbeatStats?.accepted ?? 0) >= 1, 30_000, 'a heartbeat Ironic accepts (202)');
      // The conductor records callback_url as agent_url and calls back there with the token the
      // client got. (driver_internal_info itself is racy to read: it is written after the 202
      // and wiped again when the clean ends.)
      await waitUntil(() => recorder.seen.some((s) => s.path.startsWith('/v1/commands')), 30_000, 'the conductor calling the agent back');
      const call = recorder.seen.find((s) => s.method === 'POST' && s.path.startsWith('/v1/commands'))!;
      assert.ok(call, `conductor requests: ${JSON.stringify(recorder.seen.map((s) => `${s.method} ${s.path}`))}`);
      assert.equal(tokens.check(call.token), true, 'the conductor presents the token lookup handed out');
      assert.equal(JSON.parse(call.body).name, 'clean.get_clean_steps');

      // Done: stop the agent. The recorder refused get_clean_steps, so Ironic fails the clean
      // (or it is still waiting: abort it), then the node goes back to manageable.
      await client.stop();
      const n2 = await ironic.waitForAny(node.uuid, ['clean wait', 'clean failed']);
      if (n2.provision_state === 'clean wait') await ironic.provision(node.uuid, 'abort');
      const failed = await ironic.waitForState(node.uuid, 'clean failed', 60_000);
      assert.ok(failed.last_error, 'Ironic says why the clean ended');
      await ironic.provision(node.uuid, 'manage');
      await ironic.waitForState(node.uuid, 'manageable');
    } finally {
      await client.stop();
      await recorder.close();
      captureLines('ironic-e2e-conductor-client', log.lines);
    }
    const token = tokens.reveal()!;
    assert.ok(!log.lines.join('\n').includes(token), 'the token is never logged');
  });

  it('locks an agent down when Ironic has already handed this node\'s token to someone else ("******")', { skip }, async () => {
    const mac = '52:54:00:e2:00:42';
    const node = await ironic.enroll({
      name: 'masked-token', driver: 'fake-hardware', boot_interface: 'fake', deploy_interface: 'direct',
      power_interface: 'fake', management_interface: 'noop', network_interface: 'noop',
    }, [mac]);
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable');
    await ironic.provision(node.uuid, 'clean', { clean_steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] });
    await ironic.waitForState(node.uuid, 'clean wait', 60_000);
    // Someone else (an earlier boot) takes the token.
    const first = await fetch(`${ironic.url}/v1/lookup?addresses=${mac}`, { headers: { 'X-OpenStack-Ironic-API-Version': '1.68' } });
    const firstBody = (await first.json()) as { config: { agent_token: string } };
    recordSecret(firstBody.config.agent_token);
    assert.equal(first.status, 200);

    const log = new Lines();
    const tokens = new AgentTokenStore();
    let fatal: Error | undefined;
    const inv = inventory();
    inv.interfaces[0]!.mac_address = mac;
    const client = await startIronicClient({
      config: { api_url: [ironic.url], lookup_timeout: 60 },
      logger: log,
      tokens,
      advertiseUrl: () => 'http://127.0.0.1:9',
      getVerifyCa: () => undefined,
      collectInventory: async () => inv,
      onFatal: (e) => (fatal = e),
    });
    clients.push(client);
    await waitUntil(() => fatal !== undefined, 30_000, 'the client to give up');
    assert.match(fatal!.message, /locked down/);
    assert.ok(tokens.lockdownReason);
    assert.equal(tokens.hasToken, false);
    captureLines('ironic-e2e-masked', log.lines);
    await ironic.provision(node.uuid, 'abort');
    await ironic.waitForState(node.uuid, 'clean failed', 60_000);
  });
});

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
