/**
 * Discovery (scenario 1) against the real peers from Debian: an Ironic that does
 * not know this machine (lookup 404) and ironic-inspector 11.1 as the
 * `ipa-inspection-callback-url`. The conductor client posts this machine's real
 * inventory (systeminformation) in IPA's payload shape; inspector accepts it,
 * and its enroll hook creates the node in Ironic with a port for our MAC and
 * the properties it read from the inventory. The client keeps looking up.
 *
 * Gated by INBAND_TEST_IRONIC=1 (after scripts/install-ironic.sh).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startIronicClient } from '../../agent/ironic/index.js';
import { collectInventory } from '../../agent/inventory/index.js';
import { AgentTokenStore } from '../../agent/token.js';
import { Inspector, Ironic } from '../harness/ironic.js';
import { captureLines } from '../helpers/secrets.js';

const enabled = process.env.INBAND_TEST_IRONIC === '1';
const skip = enabled ? false : 'real-Ironic discovery test: set INBAND_TEST_IRONIC=1 (after scripts/install-ironic.sh) to run it';

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

describe('discovery against the real Ironic and ironic-inspector', () => {
  let ironic: Ironic | undefined;
  let inspector: Inspector | undefined;

  // Skipped per test so run summaries count the skip; the hooks then do nothing.
  before(async () => {
    if (skip) return;
    ironic = await Ironic.start();
    inspector = await Inspector.start(ironic);
  });

  after(async () => {
    await inspector?.stop();
    await ironic?.stop();
  });

  it('posts the real inventory to inspector, which enrolls the node in Ironic; lookup carries on', { skip }, async () => {
    const inv = await collectInventory();
    const macs = inv.interfaces.map((i) => i.mac_address);
    assert.ok(macs.length > 0, 'this machine has a NIC with a MAC');
    const log = new Lines();
    const client = await startIronicClient({
      config: { api_url: [ironic!.url], inspection_callback_url: inspector!.callbackUrl, lookup_timeout: 120 },
      logger: log,
      tokens: new AgentTokenStore(),
      advertiseUrl: () => 'http://127.0.0.1:9',
      getVerifyCa: () => undefined,
      collectInventory: async () => inv,
    });
    try {
      await waitUntil(() => log.lines.some((l) => l.includes('inventory posted to')), 60_000, 'the inventory post');
      const posted = log.lines.find((l) => l.includes('inventory posted to'))!;
      const uuid = /node ([0-9a-f-]{36})/.exec(posted)?.[1];
      assert.ok(uuid, `inspector answered with the new node's uuid: ${posted}`);

      const node = await ironic!.node(uuid);
      assert.equal(node.driver, 'fake-hardware', 'enrolled by inspector\'s enroll hook');
      assert.equal(node.provision_state, 'enroll');
      const props = node.properties as Record<string, string>;
      assert.equal(Number(props.cpus), inv.cpu.count);
      assert.equal(Number(props.memory_mb), inv.memory.physical_mb);
      assert.equal(props.cpu_arch, inv.cpu.architecture);
      const ports = await ironic!.api<{ ports: Array<{ address: string }> }>('GET', `/v1/ports?node=${uuid}`);
      assert.deepEqual(ports.body.ports.map((p) => p.address).sort(), [...macs].sort());

      // Still looking up: the node is in enroll, where lookup answers 404.
      const before404 = log.lines.filter((l) => l.includes('no node matches')).length;
      await waitUntil(() => log.lines.filter((l) => l.includes('no node matches')).length > before404, 30_000, 'another lookup');
      assert.equal(client.client.phase, 'looking-up');
      assert.equal(log.lines.filter((l) => l.includes('inventory posted to')).length, 1, 'inventory posted once');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- client log:\n${log.lines.join('\n')}\n--- inspector log tail:\n${inspector!.log().slice(-4000)}`);
    } finally {
      await client.stop();
      captureLines('ironic-discovery-client', log.lines);
    }
  });
});

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
