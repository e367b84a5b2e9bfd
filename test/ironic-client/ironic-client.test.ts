/**
 * The conductor client against a fake conductor on loopback: version discovery,
 * lookup back-off and 409 pauses, `******` lockdown, fail-over between API URLs,
 * 404 → discovery, heartbeat intervals and the forced-heartbeat rate limit, error
 * unwrapping, and no token or password in anything logged. Clocks are injected,
 * so minutes of back-off take milliseconds.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { startIronicClient, type IronicClientHandle } from '../../agent/ironic/index.js';
import type { IronicClientConfig, DiscoveredCredentials, FetchLike } from '../../agent/ironic/types.js';
import type { Inventory } from '../../agent/inventory/types.js';
import { AgentTokenStore } from '../../agent/token.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';
import { AutoClock, ManualClock } from './clocks.js';
import { closedPort, FakeIronic, ironicError, lookupOk } from './fake-ironic.js';

const TOKEN = recordSecret('tok-' + 'x'.repeat(12) + Math.random().toString(36).slice(2).padEnd(24, 'q'));
const NODE = '301d9294-4349-4604-9458-616690169f14';
const MAC = '52:54:00:12:34:56';

function inventory(): Inventory {
  return {
    interfaces: [
      { name: 'eth0', mac_address: MAC, ipv4_address: '192.0.2.10', ipv6_address: null, has_carrier: true, lldp: null, vendor: null,
        product: null, client_id: null, biosdevname: null, speed_mbps: 1000, pci_address: null, driver: null },
      { name: 'eth1', mac_address: '52:54:00:AB:CD:EF', ipv4_address: null, ipv6_address: null, has_carrier: false, lldp: null, vendor: null,
        product: null, client_id: null, biosdevname: null, speed_mbps: null, pci_address: null, driver: null },
    ],
    cpu: { model_name: 'Test CPU', frequency: '2400', count: 2, architecture: 'x86_64', flags: ['vmx'], socket_count: 1 },
    disks: [{ name: '/dev/vda', model: null, size: 20 * 1024 ** 3, rotational: true, wwn: null, serial: 'S1', vendor: null,
      wwn_with_extension: null, wwn_vendor_extension: null, hctl: null, by_path: null, logical_sectors: 512, physical_sectors: 512, tran: null }],
    memory: { total: 4 * 1024 ** 3, physical_mb: 4096 },
    bmc_address: '192.0.2.200',
    bmc_v6address: '::/0',
    bmc_mac: '02:00:00:00:00:c8',
    system_vendor: { product_name: 'Standard PC', serial_number: 'S1', manufacturer: 'QEMU', firmware: { vendor: null, version: null, build_date: null } },
    boot: { current_boot_mode: 'uefi', pxe_interface: MAC },
    hostname: 'node-under-test',
  };
}

class LogRecorder {
  readonly lines: string[] = [];
  private add(level: string) {
    return (message: string, meta?: Record<string, unknown>) => {
      this.lines.push(JSON.stringify({ level, message, ...(meta ?? {}) }));
    };
  }
  error = this.add('error');
  warn = this.add('warn');
  info = this.add('info');
  debug = this.add('debug');
  text(): string {
    return this.lines.join('\n');
  }
}

interface Setup {
  handle: IronicClientHandle;
  log: LogRecorder;
  tokens: AgentTokenStore;
  fatal: Promise<Error>;
}

const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop();
});

async function fake(max = '1.82'): Promise<FakeIronic> {
  const fc = await new FakeIronic(max).start();
  running.push(fc);
  return fc;
}

async function start(opts: {
  config: IronicClientConfig;
  clock: AutoClock | ManualClock;
  tokens?: AgentTokenStore;
  applyDiscoveredCredentials?: (c: DiscoveredCredentials) => Promise<object>;
  verifyCa?: string;
  name: string;
}): Promise<Setup> {
  const log = new LogRecorder();
  const tokens = opts.tokens ?? new AgentTokenStore();
  let onFatal!: (e: Error) => void;
  const fatal = new Promise<Error>((r) => (onFatal = r));
  const handle = await startIronicClient({
    config: opts.config,
    logger: log,
    tokens,
    advertiseUrl: () => 'http://127.0.0.1:9999',
    getVerifyCa: () => opts.verifyCa,
    collectInventory: async () => inventory(),
    ...(opts.applyDiscoveredCredentials ? { applyDiscoveredCredentials: opts.applyDiscoveredCredentials } : {}),
    onFatal,
    fetch: fetch as unknown as FetchLike,
    clock: opts.clock,
    random: () => 0.5,
    agentVersion: '9.9.9',
  });
  running.push({
    stop: async () => {
      await handle.stop();
      captureLines(`conductor-client-${opts.name}`, log.lines);
    },
  });
  return { handle, log, tokens, fatal };
}

describe('conductor client: version discovery and lookup', () => {
  it('discovers the server version with GET / and looks up every MAC at min(server, 1.68)', async () => {
    const fc = await fake('1.82');
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    const s = await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), name: 'discovery' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(fc.of('root').length, 1, 'GET / once, then cached');
    const lookup = fc.of('lookup')[0]!;
    assert.equal(lookup.path, `/v1/lookup?addresses=${MAC},52:54:00:ab:cd:ef`);
    assert.equal(lookup.headers['x-openstack-ironic-api-version'], '1.68');
    assert.equal(s.handle.nodeUuid, NODE);
    assert.equal(s.tokens.reveal(), TOKEN);
  });

  it('sends the server maximum when it is below 1.68, and no agent_verify_ca then', async () => {
    const fc = await fake('1.65');
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), verifyCa: '-----BEGIN CERTIFICATE-----\nX\n', name: 'v165' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(fc.of('lookup')[0]!.headers['x-openstack-ironic-api-version'], '1.65');
    const hb = fc.of('heartbeat')[0]!;
    assert.equal(hb.headers['x-openstack-ironic-api-version'], '1.65');
    assert.equal(JSON.parse(hb.body).agent_verify_ca, undefined);
  });

  it('refuses a conductor too old for agent tokens instead of degrading', async () => {
    const fc = await fake('1.50');
    const s = await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), name: 'old' });
    const err = await s.fatal;
    assert.match(err.message, /only up to 1\.50.*>= 1\.62/);
    assert.equal(fc.of('heartbeat').length, 0);
  });

  it('uses a pinned ironic_api_version without asking GET /', async () => {
    const fc = await fake('1.82');
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    await start({ config: { api_url: [fc.url], ironic_api_version: '1.64' }, clock: new AutoClock(), name: 'pinned' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(fc.of('root').length, 0);
    assert.equal(fc.of('lookup')[0]!.headers['x-openstack-ironic-api-version'], '1.64');
  });

  it('backs off random-exponentially from 1 s up to 60 s between failed lookups', async () => {
    const fc = await fake();
    const notFound = { status: 404, body: ironicError('Resource could not be found.') };
    fc.reply('lookup', ...Array.from({ length: 9 }, () => notFound), lookupOk(NODE, TOKEN));
    const clock = new AutoClock();
    const s = await start({ config: { api_url: [fc.url] }, clock, name: 'backoff' });
    await fc.waitFor('heartbeat', 1);
    // U(1, clamp(2^(n-1), 1, 60)) with random 0.5: 1, 1.5, 2.5, 4.5, 8.5, 16.5, 30.5, 30.5, 30.5
    assert.deepEqual(clock.sleeps.slice(0, 9), [1, 1.5, 2.5, 4.5, 8.5, 16.5, 30.5, 30.5, 30.5].map((x) => x * 1000));
    // The same 404 is logged once at warn, then at debug.
    const warns = s.log.lines.filter((l) => l.includes('"level":"warn"') && l.includes('no node matches'));
    assert.equal(warns.length, 1);
    assert.match(warns[0]!, /not in a state that allows lookup/);
  });

  it('gives up after lookup_timeout and reports it as fatal', async () => {
    const fc = await fake();
    const clock = new AutoClock();
    const s = await start({ config: { api_url: [fc.url], lookup_timeout: 20 }, clock, name: 'timeout' });
    const err = await s.fatal;
    assert.equal(err.name, 'LookupTimeoutError');
    assert.match(err.message, /lookup_timeout 20 s/);
    assert.ok(clock.t >= 20_000 && clock.t < 21_000, `gave up at ${clock.t} ms`);
    assert.equal(s.handle.client.phase, 'failed');
  });

  it('pauses 5 s, then 10 s more on lookup 409 (node locked while the token is generated)', async () => {
    const fc = await fake();
    const conflict = { status: 409, body: ironicError('Node 301d is locked by host test-conductor', 'Client') };
    fc.reply('lookup', conflict, conflict, lookupOk(NODE, TOKEN));
    const clock = new AutoClock();
    const s = await start({ config: { api_url: [fc.url] }, clock, name: '409' });
    await fc.waitFor('heartbeat', 1);
    assert.deepEqual(clock.sleeps.slice(0, 2), [1000 + 5000, 1500 + 10000]);
    assert.match(s.log.text(), /lookup conflict \(node locked by the conductor\): Node 301d is locked by host test-conductor; pausing 5 s more/);
  });

  it('locks down on "******" when no token is on file, and sends no heartbeat', async () => {
    const fc = await fake();
    fc.reply('lookup', lookupOk(NODE, '******'));
    const s = await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), name: 'lockdown' });
    const err = await s.fatal;
    assert.match(err.message, /locked down/);
    assert.ok(s.tokens.lockdownReason);
    assert.equal(fc.of('heartbeat').length, 0);
  });

  it('keeps a configured token when lookup answers "******"', async () => {
    const fc = await fake();
    fc.reply('lookup', lookupOk(NODE, '******'));
    const tokens = new AgentTokenStore();
    tokens.setConfigured(TOKEN, 'kernel-cmdline');
    await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), tokens, name: 'kept' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(JSON.parse(fc.of('heartbeat')[0]!.body).agent_token, TOKEN);
    assert.equal(tokens.lockdownReason, null);
  });

  it('fails over to the next API URL when one is unreachable, and keeps using the one that answered', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const fc = await fake();
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    const clock = new ManualClock();
    const s = await start({ config: { api_url: [dead, fc.url] }, clock, name: 'failover' });
    await fc.waitFor('heartbeat', 1);
    await clock.whenParked();
    assert.equal(fc.of('lookup').length, 1);
    assert.match(s.log.text(), new RegExp(`Ironic API ${dead} failed \\(.*ECONNREFUSED.*\\); trying the next API URL`));
    const refusedBefore = s.log.lines.filter((l) => l.includes(`${dead} failed`)).length;
    clock.advance(clock.pending!);
    await fc.waitFor('heartbeat', 2);
    const refusedAfter = s.log.lines.filter((l) => l.includes(`${dead} failed`)).length;
    assert.equal(refusedAfter, refusedBefore, 'the dead URL is not tried again once another answered');
  });

  it('treats a URL that is not an Ironic API as failed and moves on', async () => {
    const notIronic = await fake();
    notIronic.setDefault('root', { status: 404, body: { detail: 'nope' } });
    const fc = await fake();
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    const s = await start({ config: { api_url: [notIronic.url, fc.url] }, clock: new AutoClock(), name: 'not-ironic' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(notIronic.of('lookup').length, 0);
    assert.match(s.log.text(), /GET \/ answered HTTP 404/);
  });
});

describe('conductor client: heartbeats', () => {
  async function heartbeating(fc: FakeIronic, name: string, extra: Partial<Parameters<typeof start>[0]> = {}) {
    fc.reply('lookup', lookupOk(NODE, TOKEN, 300));
    const clock = new ManualClock();
    const s = await start({ config: { api_url: [fc.url] }, clock, name, ...extra });
    await fc.waitFor('heartbeat', 1);
    await clock.whenParked();
    return { ...s, clock };
  }

  it('sends callback_url, agent_version, agent_token and agent_verify_ca, then waits heartbeat_timeout × U(0.3, 0.6)', async () => {
    const fc = await fake();
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const { clock } = await heartbeating(fc, 'interval', { verifyCa: pem });
    const hb = fc.of('heartbeat')[0]!;
    assert.equal(hb.path, `/v1/heartbeat/${NODE}`);
    assert.equal(hb.headers['x-openstack-ironic-api-version'], '1.68');
    assert.equal(hb.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(hb.body), { callback_url: 'http://127.0.0.1:9999', agent_version: '9.9.9', agent_token: TOKEN, agent_verify_ca: pem });
    assert.equal(clock.pending, 300 * 0.45 * 1000);
    clock.advance(clock.pending!);
    await fc.waitFor('heartbeat', 2);
  });

  it('retries 5-10 s after a refused heartbeat and logs Ironic\'s unwrapped message', async () => {
    const fc = await fake();
    fc.reply('heartbeat', { status: 400, body: ironicError('Invalid or missing agent token received.') });
    const { clock, log } = await heartbeating(fc, 'refused');
    assert.equal(clock.pending, 7500);
    assert.match(log.text(), /heartbeat refused: HTTP 400: Invalid or missing agent token received\./);
    assert.doesNotMatch(log.text(), /error_message|faultcode/);
  });

  it('treats a 409 as a conflict to retry soon', async () => {
    const fc = await fake();
    fc.reply('heartbeat', { status: 409, body: ironicError('Node is locked by host test-conductor') });
    const { clock, log } = await heartbeating(fc, 'hb409');
    assert.equal(clock.pending, 7500);
    assert.match(log.text(), /heartbeat conflict .*Node is locked by host test-conductor/);
  });

  it('forces a heartbeat when asked, but never within 5 s of the previous one', async () => {
    const fc = await fake();
    const { clock, handle } = await heartbeating(fc, 'forced');
    assert.equal(clock.pending, 135_000);
    handle.forceHeartbeat();
    await clock.whenParked();
    assert.equal(clock.pending, 5000, 'forced right after a heartbeat: waits out the 5 s gap');
    handle.forceHeartbeat();
    handle.forceHeartbeat();
    await clock.whenParked();
    assert.equal(clock.pending, 5000);
    assert.equal(fc.of('heartbeat').length, 1, 'repeated forces do not send more heartbeats');
    clock.advance(5000);
    await fc.waitFor('heartbeat', 2);
    await clock.whenParked();
    assert.equal(clock.pending, 135_000, 'back to the normal interval');
    clock.advance(60_000);
    handle.forceHeartbeat();
    await fc.waitFor('heartbeat', 3);
    assert.equal(handle.client.heartbeatStats?.forced, 2);
  });

  it('stops cleanly while waiting', async () => {
    const fc = await fake();
    const { handle } = await heartbeating(fc, 'stop');
    await handle.stop();
    assert.equal(handle.client.phase, 'stopped');
  });
});

describe('conductor client: discovery on lookup 404', () => {
  it('posts the inventory to inspection_callback_url, applies BMC credentials, reports the outcome, then keeps looking up', async () => {
    const fc = await fake('1.82');
    const password = recordSecret('Disc0very-' + Math.random().toString(36).slice(2, 10));
    fc.reply('inspection', { status: 200, body: { uuid: NODE, bmc_credentials: { username: 'ironic', password, privilege: 'administrator' } } });
    fc.reply('inspection', { status: 200, body: {} });
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    const applied: DiscoveredCredentials[] = [];
    const s = await start({
      config: { api_url: [fc.url], inspection_callback_url: `${fc.url}/v1/continue` },
      clock: new AutoClock(),
      applyDiscoveredCredentials: async (c) => {
        applied.push(c);
        return { user_id: 3, channels: [1], username: c.username, verified: true };
      },
      name: 'discovery-creds',
    });
    await fc.waitFor('heartbeat', 1);
    const posts = fc.of('inspection');
    assert.equal(posts.length, 2, 'inventory once, credential result once, even though lookup 404ed twice');
    const first = JSON.parse(posts[0]!.body);
    assert.equal(first.inventory.interfaces[0].mac_address, MAC);
    assert.equal(first.inventory.bmc_address, '192.0.2.200');
    assert.equal(first.root_disk.name, '/dev/vda');
    assert.equal(first.boot_interface, MAC);
    assert.equal(posts[0]!.headers['x-openstack-ironic-api-version'], undefined, 'inspector-compatible: no microversion');
    assert.equal(applied.length, 1);
    assert.equal(applied[0]!.username, 'ironic');
    assert.equal(applied[0]!.password, password);
    assert.equal(applied[0]!.privilege, 'administrator');
    const second = JSON.parse(posts[1]!.body);
    assert.deepEqual(second, { uuid: NODE, bmc_credentials_result: { status: 'succeeded', result: { user_id: 3, channels: [1], username: 'ironic', verified: true } } });
    assert.ok(!posts[1]!.body.includes(password));
    assert.ok(!s.log.text().includes(password), 'the password is never logged');
    assert.match(s.log.text(), /BMC credentials from discovery for user \\"ironic\\": applied/);
  });

  it('reports a failed credential change without the password, even when the error text contains it', async () => {
    const fc = await fake();
    const password = recordSecret('Fail3d-' + Math.random().toString(36).slice(2, 10));
    fc.reply('inspection', { status: 200, body: { uuid: NODE, bmc_credentials: { username: 'ironic', password } } });
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    const s = await start({
      config: { api_url: [fc.url], inspection_callback_url: `${fc.url}/v1/continue` },
      clock: new AutoClock(),
      applyDiscoveredCredentials: async () => {
        throw new Error(`BMC refused password ${password}`);
      },
      name: 'discovery-fail',
    });
    await fc.waitFor('heartbeat', 1);
    const result = JSON.parse(fc.of('inspection')[1]!.body);
    assert.deepEqual(result.bmc_credentials_result, { status: 'failed', error: 'BMC refused password ***' });
    assert.ok(!s.log.text().includes(password));
  });

  it('with ipa-insecure, takes no BMC credentials from discovery and says so at start and on the answer', async () => {
    const fc = await fake();
    const password = recordSecret('Ins3cure-' + Math.random().toString(36).slice(2, 10));
    fc.reply('inspection', { status: 200, body: { uuid: NODE, bmc_credentials: { username: 'ironic', password } } });
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    let applied = 0;
    const s = await start({
      config: { api_url: [fc.url], inspection_callback_url: `${fc.url}/v1/continue`, insecure: true },
      clock: new AutoClock(),
      applyDiscoveredCredentials: async () => {
        applied++;
        return { user_id: 3 };
      },
      name: 'discovery-insecure',
    });
    await fc.waitFor('heartbeat', 1);
    assert.equal(applied, 0, 'the BMC was never written');
    const result = JSON.parse(fc.of('inspection')[1]!.body);
    assert.equal(result.bmc_credentials_result.status, 'refused');
    assert.match(result.bmc_credentials_result.error, /ipa-insecure/);
    assert.match(s.log.text(), /ipa-insecure: the TLS certificates .* NOT verified/);
    assert.match(s.log.text(), /BMC credentials from discovery for user \\"ironic\\": refused/);
    assert.ok(!s.log.text().includes(password));
  });

  it('uses Ironic\'s /v1/continue_inspection when the API has it (>= 1.84) and no callback is configured', async () => {
    const fc = await fake('1.91');
    fc.reply('inspection', { status: 202, body: { uuid: NODE } });
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), name: 'continue-inspection' });
    await fc.waitFor('heartbeat', 1);
    const post = fc.of('inspection')[0]!;
    assert.equal(post.path, '/v1/continue_inspection');
    assert.equal(post.headers['x-openstack-ironic-api-version'], undefined);
  });

  it('does not post anywhere when the API predates continue_inspection and no callback is configured', async () => {
    const fc = await fake('1.82');
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    await start({ config: { api_url: [fc.url] }, clock: new AutoClock(), name: 'no-discovery' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(fc.of('inspection').length, 0);
  });

  it('retries the inventory post on 5xx, and gives up after 5 attempts without stopping lookup', async () => {
    const fc = await fake();
    fc.setDefault('inspection', { status: 503, body: { error: { message: 'inspector is restarting' } } });
    fc.reply('lookup', { status: 404, body: ironicError('Resource could not be found.') }, lookupOk(NODE, TOKEN));
    const clock = new AutoClock();
    const s = await start({ config: { api_url: [fc.url], inspection_callback_url: `${fc.url}/v1/continue` }, clock, name: 'discovery-retry' });
    await fc.waitFor('heartbeat', 1);
    assert.equal(fc.of('inspection').length, 5);
    assert.deepEqual(clock.sleeps.slice(0, 4), [5000, 7500, 11250, 16875]);
    assert.match(s.log.text(), /posting the inventory to .* failed: HTTP 503: inspector is restarting/);
  });
});

describe('conductor client: secrets', () => {
  it('never logs the agent token, even at debug level and on errors', async () => {
    const fc = await fake();
    fc.reply('lookup', lookupOk(NODE, TOKEN));
    fc.reply('heartbeat', { status: 400, body: ironicError('Invalid or missing agent token received.') });
    const clock = new ManualClock();
    const s = await start({ config: { api_url: [fc.url] }, clock, name: 'token-leak' });
    await fc.waitFor('heartbeat', 1);
    await clock.whenParked();
    clock.advance(clock.pending!);
    await fc.waitFor('heartbeat', 2);
    await s.handle.stop();
    assert.ok(s.log.lines.length > 3);
    assert.ok(!s.log.text().includes(TOKEN));
    assert.ok(!s.log.text().includes('agent_token'));
  });
});
