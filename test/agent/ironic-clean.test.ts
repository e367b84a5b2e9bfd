/**
 * The whole product against the real thing: the real, unmodified Ironic from
 * Debian (21.4, standalone, noauth, sqlite; started by the test) runs a manual
 * clean with `{"interface": "deploy", "step": "set_bmc_credentials"}` against
 * the running agent (serve(): API with auto-TLS, lookup, heartbeat), whose BMC
 * is a real ipmi_sim reached through its VM codec. The node must return to
 * `manageable`, and `ipmitool -I lanplus` must log in with the new credentials.
 *
 * Gated by INBAND_TEST_IRONIC=1 (CI's Ironic stage, after scripts/install-ironic.sh),
 * like test/ironic/. Ironic's own log is not captured for the leak check: Ironic
 * keeps step args (the password) in the node, by design (see agent/README-api.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { createLogger, LineCollector } from '../../agent/logger.js';
import { serve } from '../../agent/serve.js';
import type { Inventory } from '../../agent/inventory/types.js';
import { Ironic } from '../harness/ironic.js';
import { ipmiSimAvailability, startIpmiSim } from '../harness/ipmi-sim.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

const enabled = process.env.INBAND_TEST_IRONIC === '1';
const skip = enabled ? false : 'real-Ironic test: set INBAND_TEST_IRONIC=1 (after scripts/install-ironic.sh) to run it';
const MAC = '52:54:00:e2:00:51';
const NEW_PASSWORD = recordSecret('Ir-clean-pw-31');

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
    hostname: 'ironic-clean-e2e',
  } as Inventory;
}

test('a real Ironic runs the set_bmc_credentials clean step on the agent; the node returns to manageable and lanplus logs in', { skip, timeout: 240_000 }, async (t) => {
  const avail = ipmiSimAvailability();
  if (!avail.available) throw new Error(`INBAND_TEST_IRONIC=1 but ipmi_sim is missing: ${avail.reason}`);
  const dir = mkdtempSync(join(tmpdir(), 'inband-ironic-clean-'));
  const t0 = Date.now();
  const ironic = await Ironic.start({ extraConf: `\n[agent]\ncertificates_path = ${join(dir, 'certs')}\ncommand_timeout = 60\n` });
  t.diagnostic(`Ironic up after ${Date.now() - t0} ms`);
  const sim = await startIpmiSim();
  const lines = new LineCollector();
  let agent: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    const node = await ironic.enroll({
      name: 'set-bmc-credentials', driver: 'fake-hardware', boot_interface: 'fake', deploy_interface: 'direct',
      power_interface: 'fake', management_interface: 'noop', network_interface: 'noop',
    }, [MAC]);
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable');
    // Accepted before any agent is up: validated once the agent's steps are cached.
    await ironic.provision(node.uuid, 'clean', {
      clean_steps: [{ interface: 'deploy', step: 'set_bmc_credentials', args: { username: 'ironic', password: NEW_PASSWORD, privilege: 'administrator' } }],
    });
    await ironic.waitForState(node.uuid, 'clean wait', 60_000);

    const loaded = loadConfig({
      argv: ['--api-url', ironic.url, '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', '--lookup-timeout', '120',
        '--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`, '--state-dir', join(dir, 'state')],
      env: {}, cmdlinePath: null,
    });
    agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }), collectInventory: async () => inventory() });
    assert.equal(agent.tls.mode, 'auto', 'with a conductor the API is served over auto-TLS');

    const final = await ironic.waitForAny(node.uuid, ['manageable', 'clean failed'], 180_000);
    const commands = agent.api.store.list().map((r) => `${r.name}:${r.status}`);
    assert.equal(final.provision_state, 'manageable', `clean ended in ${final.provision_state}: ${String(final.last_error)}; agent commands: ${commands.join(', ')}`);
    assert.ok(commands.includes('clean.get_clean_steps:SUCCEEDED'), commands.join(', '));
    assert.ok(commands.includes('clean.execute_clean_step:SUCCEEDED'), commands.join(', '));
    assert.equal(agent.tokens.source, 'lookup');

    const login = await sim.lanplusLogin('ironic', NEW_PASSWORD);
    assert.ok(login.ok, `lanplus login with the credentials Ironic's clean step set failed: ${login.stderr}`);
    assert.ok(!lines.text().includes(NEW_PASSWORD), 'the password reached the agent log');
    const token = agent.tokens.reveal();
    if (token) {
      recordSecret(token);
      assert.ok(!lines.text().includes(token), 'the token reached the agent log');
    }
  } finally {
    await agent?.close();
    captureLines('agent-ironic-clean', lines.lines);
    await sim.stop();
    await ironic.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
