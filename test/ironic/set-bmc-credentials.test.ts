/**
 * End to end with the real Ironic from Debian (21.4, standalone, noauth, sqlite,
 * started by the test) and a real BMC (ipmi_sim): Ironic's `ipmi` hardware type
 * runs a manual clean with
 *   {"interface": "deploy", "step": "set_bmc_credentials", "args": {...}}
 * Ironic powers the node on over lanplus; the BMC's power-on starts the agent
 * (`inband-agent serve --backend vm-codec`), which looks the node up, serves
 * auto-TLS, heartbeats, and runs the step in-band through the VM-codec system
 * interface. The node returns to `manageable`, powered off, and `ipmitool -I
 * lanplus` logs in with the new credentials.
 *
 * Needs scripts/install-ironic.sh and a build (dist/). Gated by INBAND_TEST_IRONIC=1;
 * when set, anything missing fails the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot, sh, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, Ironic, startNodeBmc, type NodeBmc } from '../harness/ironic.js';
import { recordSecret, testLogDir } from '../helpers/secrets.js';

const skip = skipUnlessIronic('real-Ironic end-to-end test');

describe('manual clean with set_bmc_credentials, driven by the real Ironic', () => {
  let ironic: Ironic;
  let bmc: NodeBmc;
  let agentLog: string;
  let work: string | undefined;

  // Skipped per test (not per suite) so run summaries count the skips; the hooks then do nothing.
  before(async () => {
    if (skip) return;
    const root = projectRoot();
    const cli = join(root, 'dist', 'agent', 'cli.js');
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
    ironic = await Ironic.start();
    work = mkdtempSync(join(tmpdir(), 'agent-e2e-'));
    agentLog = join(testLogDir() ?? work, `ironic-e2e-agent-${process.pid}.log`);
    const port = await freeLoopbackPort();
    // What the BMC runs on power on: the agent, configured the way Ironic's boot
    // config would (api url), plus the test's loopback addressing and the VM-codec backend.
    const startCmd = [
      'exec', sh(process.execPath), sh(join(root, 'bin', 'inband-agent.js')), 'serve',
      '--api-url', sh(ironic.url),
      '--listen-host', '127.0.0.1', '--listen-port', String(port),
      '--advertise-host', '127.0.0.1', '--advertise-port', String(port),
      '--lookup-timeout', '120',
      '--state-dir', sh(work),
      '--log-level', 'debug',
      '--backend', 'vm-codec', '--vm-codec', '"127.0.0.1:$NODE_VM_PORT"',
      '>>', sh(agentLog), '2>&1',
    ].join(' ');
    bmc = await startNodeBmc({ startCmd });
  });

  after(async () => {
    if (bmc) await bmc.stop();
    if (ironic) await ironic.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('returns the node to manageable and the new BMC user logs in over lanplus', { skip }, async () => {
    const t0 = Date.now();
    const newUser = 'ironic_e2e';
    // ipmi_sim keeps 16 password bytes (IPMI_SIM_QUIRKS), so stay within 16.
    const newPassword = recordSecret(`E2e-${randomBytes(6).toString('hex')}`);
    const node = await ironic.enrollIpmiNode('e2e-set-bmc-credentials', bmc.lanPort, 'admin', 'initpw1');
    try {
      await ironic.provision(node.uuid, 'manage');
      await ironic.waitForState(node.uuid, 'manageable', 60_000);
      const tManageable = Date.now();

      await ironic.provision(node.uuid, 'clean', {
        clean_steps: [{ interface: 'deploy', step: 'set_bmc_credentials', args: { username: newUser, password: newPassword, privilege: 'administrator' } }],
      });
      const done = await ironic.waitForState(node.uuid, 'manageable', 180_000);
      const tClean = Date.now();
      assert.equal(done.last_error, null);
      assert.equal(done.power_state, 'power off', 'Ironic powered the node off after cleaning');

      const login = await bmc.lanplusLogin(newUser, newPassword);
      assert.ok(login.ok, `lanplus login with the new credentials: ${login.stderr}`);
      const old = await bmc.lanplusLogin('admin', 'initpw1');
      assert.ok(old.ok, 'the credentials Ironic uses are untouched (a new user, not a changed one)');

      const log = readFileSync(agentLog, 'utf8');
      assert.match(log, /heartbeat/i);
      assert.ok(!log.includes(newPassword), 'the agent never logs the password');
      console.log(`# e2e: manage ${tManageable - t0} ms, clean with set_bmc_credentials ${tClean - tManageable} ms`);
    } catch (err) {
      const n = await ironic.node(node.uuid).catch(() => undefined);
      const tail = (s: string, k = 4000): string => s.slice(-k);
      let log = '';
      try {
        log = readFileSync(agentLog, 'utf8');
      } catch {
        log = '(no agent log)';
      }
      // Ironic 21.4 logs clean-step args unmasked (docs/http-api.md warns): scrub the password from what we print.
      const scrub = (x: string): string => x.split(newPassword).join('***');
      throw new Error(scrub(`${(err as Error).message}\n--- node: ${n?.provision_state} / ${n?.power_state} / ${n?.last_error}` +
        `\n--- agent log tail:\n${tail(log)}\n--- ipmi_sim:\n${tail(bmc.log(), 1500)}\n--- ironic log tail:\n${tail(ironic.log().replace(/ipmi_password[^,}]*/g, 'ipmi_password ***'), 6000)}`));
    }
  });
});
