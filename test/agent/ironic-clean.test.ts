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
 * keeps step args (the password) in the node, by design (see docs/http-api.md, "Driving it from Ironic").
 */
import { after, before, describe, it } from 'node:test';
import { existsSync, readdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve } from '../../agent/serve.js';
import type { Inventory } from '../../agent/inventory/types.js';
import { Ironic } from '../harness/ironic.js';
import { ipmiSimAvailability, startIpmiSim } from '../harness/ipmi-sim.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

const enabled = process.env.INBAND_TEST_IRONIC === '1';
const skip = enabled ? false : 'real-Ironic test: set INBAND_TEST_IRONIC=1 (after scripts/install-ironic.sh) to run it';
const MAC = '52:54:00:e2:00:51';
const NEW_PASSWORD = recordSecret('Ir-clean-pw-31');

function inventory(mac = MAC): Inventory {
  return {
    interfaces: [{ name: 'eth0', mac_address: mac, ipv4_address: '127.0.0.1', ipv6_address: null, has_carrier: true, lldp: null, vendor: null,
      product: null, client_id: null, biosdevname: null, speed_mbps: null, pci_address: null, driver: null }],
    cpu: { model_name: null, frequency: null, count: 1, architecture: 'x86_64', flags: [], socket_count: null },
    disks: [],
    memory: { total: 1, physical_mb: 1 },
    bmc_address: null,
    bmc_v6address: null,
    system_vendor: { product_name: null, serial_number: null, manufacturer: null, firmware: { vendor: null, version: null, build_date: null } },
    boot: { current_boot_mode: 'bios', pxe_interface: mac },
    hostname: 'ironic-clean-e2e',
  } as Inventory;
}

describe('the agent driven by the real Ironic', { skip, timeout: 300_000 }, () => {
  let dir: string;
  let ironic: Ironic;
  let sim: Awaited<ReturnType<typeof startIpmiSim>>;

  before(async () => {
    const avail = ipmiSimAvailability();
    if (!avail.available) throw new Error(`INBAND_TEST_IRONIC=1 but ipmi_sim is missing: ${avail.reason}`);
    dir = mkdtempSync(join(tmpdir(), 'inband-ironic-clean-'));
    const t0 = Date.now();
    ironic = await Ironic.start({ extraConf: `\n[agent]\ncertificates_path = ${join(dir, 'certs')}\ncommand_timeout = 60\n` });
    console.log(`Ironic up after ${Date.now() - t0} ms`);
    sim = await startIpmiSim();
  });

  after(async () => {
    await sim?.stop();
    await ironic?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function runClean(name: string, mac: string, args: Record<string, unknown>, finalStates: readonly string[]) {
    const node = await ironic.enroll({
      name, driver: 'fake-hardware', boot_interface: 'fake', deploy_interface: 'direct',
      power_interface: 'fake', management_interface: 'noop', network_interface: 'noop',
    }, [mac]);
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable');
    // Accepted before any agent is up: validated once the agent's steps are cached.
    await ironic.provision(node.uuid, 'clean', { clean_steps: [{ interface: 'deploy', step: 'set_bmc_credentials', args }] });
    await ironic.waitForState(node.uuid, 'clean wait', 60_000);
    const lines = new LineCollector();
    const loaded = loadConfig({
      argv: ['--api-url', ironic.url, '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', '--lookup-timeout', '120',
        '--backend', 'vm-codec', '--vm-codec', `${sim.host}:${sim.vmPort}`, '--state-dir', join(dir, `state-${name}`)],
      env: {}, cmdlinePath: null,
    });
    const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }), collectInventory: async () => inventory(mac) });
    try {
      const final = await ironic.waitForAny(node.uuid, finalStates, 180_000);
      return { node, final, agent, lines, commands: agent.api.store.list().map((r) => `${r.name}:${r.status}`) };
    } finally {
      await agent.close();
      captureLines(`agent-ironic-${name}`, lines.lines);
      const token = agent.tokens.reveal();
      if (token) {
        recordSecret(token);
        assert.ok(!lines.text().includes(token), 'the token reached the agent log');
      }
      assert.ok(!lines.text().includes(NEW_PASSWORD), 'the password reached the agent log');
    }
  }

  it('runs the set_bmc_credentials clean step: the node returns to manageable and lanplus logs in with the new credentials', async () => {
    const r = await runClean('set-bmc-credentials', MAC, { username: 'ironic', password: NEW_PASSWORD, privilege: 'administrator' }, ['manageable', 'clean failed']);
    assert.equal(r.final.provision_state, 'manageable', `clean ended in ${r.final.provision_state}: ${String(r.final.last_error)}; agent commands: ${r.commands.join(', ')}`);
    assert.ok(r.commands.includes('clean.get_clean_steps:SUCCEEDED'), r.commands.join(', '));
    assert.ok(r.commands.includes('clean.execute_clean_step:SUCCEEDED'), r.commands.join(', '));
    assert.equal(r.agent.tls.mode, 'auto', 'with a conductor the API is served over auto-TLS');
    assert.equal(r.agent.tokens.source, 'lookup');
    const login = await sim.lanplusLogin('ironic', NEW_PASSWORD);
    assert.ok(login.ok, `lanplus login with the credentials Ironic's clean step set failed: ${login.stderr}`);
  });

  it('a step the engine refuses fails the clean with the reason in last_error, and Ironic collects the agent\'s logs', async () => {
    const r = await runClean('refused-step', '52:54:00:e2:00:52', { username: 'bad name!', password: NEW_PASSWORD }, ['clean failed']);
    assert.equal(r.final.provision_state, 'clean failed');
    assert.match(String(r.final.last_error), /INVALID_REQUEST/, String(r.final.last_error).replace(NEW_PASSWORD, '***'));
    // Refused by the contract as a FAILED command, not a 400, which Ironic would copy with the args into last_error.
    assert.match(String(r.final.last_error), /params\.step\.args\.username: must be 1-16 ASCII/, String(r.final.last_error).replace(NEW_PASSWORD, '***'));
    assert.ok(!String(r.final.last_error).includes(NEW_PASSWORD), 'the password is not in the node\'s last_error');
    assert.ok(r.commands.includes('clean.execute_clean_step:FAILED'), r.commands.join(', '));
    assert.ok(r.commands.includes('log.collect_system_logs:SUCCEEDED'), `Ironic did not collect logs: ${r.commands.join(', ')}`);
    const logsDir = join(ironic.stateDir, 'deploy-logs');
    assert.ok(existsSync(logsDir) && readdirSync(logsDir).some((f) => f.startsWith(r.node.uuid)), 'Ironic stored the collected logs');
  });
});
