/**
 * Faults during `conductor rotate`, with the real Ironic, a real BMC (ipmi_sim
 * starting our agent on power on) and, when installed, a real Barbican:
 *
 * 1. Barbican is down: the rotation stops before anything reaches the BMC;
 *    Ironic keeps its credential and the node stays manageable.
 * 2. The agent dies mid-rotation (killed as soon as the node boots it): the
 *    clean fails, the rotation records it and returns the node to manageable;
 *    Ironic still holds the previous credential, which still works.
 * 3. The BMC stops answering mid-rotation (ipmi_sim SIGSTOPped once Ironic has
 *    rebooted the node into the clean, before it hands the agent the step): the
 *    agent's IPMI calls time out (--ipmi-timeout 2 --ipmi-retries 1: seconds, not
 *    the default 80 s), the step fails, the rotation records it and returns the
 *    node to manageable; once the BMC answers again Ironic's credential works.
 * 4. A retry then rotates; and a rotation with the Barbican store keeps the new
 *    password in Barbican, current, and Ironic works with it.
 *
 * Gated by INBAND_TEST_IRONIC=1 (scripts/install-ironic.sh, npm run build);
 * part 3's Barbican half skips, saying so, without python3-barbican.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BarbicanSecretStore } from '../../conductor/barbican-store.js';
import { main } from '../../conductor/cli.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { RotationRecord } from '../../conductor/rotate.js';
import { Barbican, barbicanAvailability } from '../harness/barbican.js';
import { agentRamdiskCommand, delay, projectRoot, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, Ironic, startNodeBmc, type IronicNode, type NodeBmc } from '../harness/ironic.js';
import { captureLines, recordSecret, testLogDir } from '../helpers/secrets.js';

const skip = skipUnlessIronic('real-Ironic fault tests');
const barbicanAvail = barbicanAvailability();
const skipBarbican = skip || (barbicanAvail.available ? false : `rotation with the Barbican store: ${barbicanAvail.reason}`);

const INITIAL = recordSecret('initpw-faults1');

/**
 * The agent's Ironic API URL points here: a pass-through to Ironic that can hold
 * the agent's heartbeats. Ironic hands a booted agent its clean step on a
 * heartbeat, so holding them lets the test stop the BMC after Ironic's reboot
 * (its own lanplus power calls) and before the step reaches the agent.
 */
class HeartbeatGate {
  #server: Server;
  #held: Promise<void> = Promise.resolve();
  #open: () => void = () => undefined;
  url = '';

  constructor(upstream: string) {
    this.#server = createServer((req, res) => {
      const wait = req.url?.startsWith('/v1/heartbeat/') ? this.#held : Promise.resolve();
      void wait.then(() => {
        const up = httpRequest(new URL(req.url ?? '/', upstream), { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      });
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
    return this;
  }

  hold(): void {
    this.#held = new Promise((r) => (this.#open = r));
  }

  release(): void {
    this.#open();
  }

  async stop(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

interface AgentCommand {
  command_name: string;
  command_status: string;
  command_error: unknown;
}

/** The agent's command records (GET /v1/commands/ needs no token; its auto-TLS certificate is self-signed). */
function agentCommands(port: number): Promise<AgentCommand[]> {
  return new Promise((resolve) => {
    const req = httpsGet({ host: '127.0.0.1', port, path: '/v1/commands/', rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { commands: AgentCommand[] }).commands ?? []);
        } catch {
          resolve([]);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve([]));
  });
}

describe('conductor rotate under faults, against the real Ironic', () => {
  let ironic: Ironic;
  let bmc: NodeBmc;
  let barbican: Barbican | undefined;
  let gate: HeartbeatGate | undefined;
  let agentPort: number;
  let work: string;
  let agentLog: string;
  let node: IronicNode;
  let storePath: string;
  const log: string[] = [];

  // This Ironic runs without fast track: the clean boots a fresh agent, so no
  // certificate exists to seal the password to beforehand (that path is
  // rotate-sealed-ironic.test.ts). The plain step args are allowed here, and
  // their warning (exit 3) is the only one a successful rotation may carry.
  const rotate = async (...extra: string[]): Promise<{ code: number; record: RotationRecord }> => {
    const out: string[] = [];
    let code = await main(['rotate', node.uuid, '--ironic-url', ironic.url, '--store-path', storePath, '--clean-timeout', '300', '--allow-plain-args', ...extra], {
      stdout: (s) => out.push(s), stderr: (s) => log.push(s), env: { PATH: process.env.PATH },
    });
    const record = JSON.parse(out.join('')) as RotationRecord;
    if (code === 3 && record.warnings.every((w) => w.startsWith('PLAIN PASSWORD IN STEP ARGS'))) code = 0;
    return { code, record };
  };

  /** Ironic's own power status call with the credential it holds; returns last_error. */
  const ironicPowerCheck = async (): Promise<string | null> => {
    const n = await ironic.node(node.uuid);
    const r = await ironic.api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: n.power_state === 'power on' ? 'power on' : 'power off' });
    assert.equal(r.status, 202);
    let a = await ironic.node(node.uuid);
    for (let i = 0; i < 160 && a.target_power_state; i++) {
      await delay(250);
      a = await ironic.node(node.uuid);
    }
    return a.last_error;
  };

  before(async () => {
    if (skip) return;
    const root = projectRoot();
    if (!existsSync(join(root, 'dist', 'agent', 'cli.js'))) throw new Error('dist/agent/cli.js is missing: run npm run build first');
    // A lost agent fails the clean after 20 s instead of 30 min.
    ironic = await Ironic.start({ extraConf: '[conductor]\nclean_callback_timeout = 20\ncheck_provision_state_interval = 3\n' });
    if (!skipBarbican) barbican = await Barbican.start();
    work = mkdtempSync(join(tmpdir(), 'rotate-faults-'));
    storePath = join(work, 'store', 'secrets.json');
    agentLog = join(testLogDir() ?? work, `rotate-faults-agent-${process.pid}.log`);
    gate = await new HeartbeatGate(ironic.url).listen();
    const port = await freeLoopbackPort();
    agentPort = port;
    // A BMC that stops answering fails a step after 2 tries of 2 s, not 8 of 10 s.
    const startCmd = agentRamdiskCommand({ apiUrl: gate.url, port, stateDir: join(work, 'agent'), logFile: agentLog, extra: ['--ipmi-timeout', '2', '--ipmi-retries', '1'] });
    bmc = await startNodeBmc({ startCmd, users: [{ id: 2, name: 'admin', password: INITIAL, privilege: 'admin' }] });
    node = await ironic.enrollIpmiNode('rotate-faults', bmc.lanPort, 'admin', INITIAL);
    await ironic.provision(node.uuid, 'manage');
    await ironic.waitForState(node.uuid, 'manageable', 60_000);
  });

  after(async () => {
    captureLines('conductor-rotate-faults', log.join(''));
    if (bmc) await bmc.stop();
    await gate?.stop();
    if (ironic) await ironic.stop();
    await barbican?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const diagnose = (e: unknown): Error => {
    let agent = '(no agent log)';
    try {
      agent = readFileSync(agentLog, 'utf8').slice(-3000);
    } catch {
      // none
    }
    const scrub = (x: string): string => x.replace(/ipmi_password[^,}]*/g, 'ipmi_password ***').replace(/'password': '[^']*'/g, "'password': '***'").replace(/"password": "[^"]*"/g, '"password": "***"');
    return new Error(scrub(`${(e as Error).message}\n--- conductor:\n${log.join('').slice(-3000)}\n--- agent:\n${agent}\n--- ironic:\n${ironic.log().slice(-3000)}`));
  };

  it('Barbican down: nothing reaches the BMC, Ironic keeps a working credential', { skip }, async () => {
    try {
      const port = await freeLoopbackPort();
      const { code, record } = await rotate('--store', 'barbican', '--barbican-url', `http://127.0.0.1:${port}`, '--barbican-project-id', randomUUID());
      assert.equal(code, 1);
      assert.equal(record.failedStep, 'store-pending');
      assert.match(record.error ?? '', /did not answer/);
      assert.deepEqual(record.applied, []);
      assert.equal(record.current.username, 'admin');
      const n = await ironic.node(node.uuid);
      assert.equal(n.provision_state, 'manageable');
      assert.equal(n.driver_info.ipmi_username, 'admin');
      assert.equal(await ironicPowerCheck(), null, 'Ironic still reaches the BMC');
    } catch (e) {
      throw diagnose(e);
    }
  });

  it('the agent dies mid-rotation: the clean fails, the node returns to manageable, Ironic still logs in as before', { skip }, async () => {
    try {
      const pidFile = join(bmc.dir, 'node.pid');
      if (existsSync(pidFile)) unlinkSync(pidFile);
      const running = rotate();
      // Kill the agent the moment the node's power-on starts it.
      let killed = false;
      for (let i = 0; i < 1200 && !killed; i++) {
        await delay(50);
        if (!existsSync(pidFile)) continue;
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0) {
          try {
            process.kill(pid, 'SIGKILL');
            killed = true;
          } catch {
            // not yet exec'd or already gone
          }
        }
      }
      assert.ok(killed, 'the agent was started and killed');
      const { code, record } = await running;
      assert.equal(code, 1, `expected a failed rotation: ${JSON.stringify(record.steps)}`);
      assert.equal(record.failedStep, 'clean');
      assert.equal(record.current.username, 'admin', 'the record names the credential Ironic still holds');
      assert.ok(record.rolledBack.includes('node moved clean failed → manageable'), record.rolledBack.join('; '));
      assert.equal(record.next.secretState, 'failed');
      const n = await ironic.node(node.uuid);
      assert.equal(n.provision_state, 'manageable');
      assert.equal(n.driver_info.ipmi_username, 'admin');
      assert.equal(await ironicPowerCheck(), null, 'Ironic still reaches the BMC as admin');
      assert.ok((await bmc.lanplusLogin('admin', INITIAL)).ok);
      const hist = await new FileSecretStore({ path: storePath }).history(node.uuid);
      assert.deepEqual(hist.map((e) => e.state), ['failed']);
    } catch (e) {
      throw diagnose(e);
    }
  });

  it('the BMC stops answering mid-rotation: the step fails in seconds, the node returns to manageable, Ironic still logs in as before', { skip }, async () => {
    let paused = false;
    try {
      const g = gate as HeartbeatGate;
      g.hold();
      const running = rotate();
      // Ironic reboots the node (its lanplus power calls, which must find the BMC
      // answering) and waits in clean wait for the agent's heartbeat, held here.
      await ironic.waitForState(node.uuid, 'clean wait', 120_000);
      bmc.pause();
      paused = true;
      g.release();
      // The step reaches the agent, whose IPMI calls time out; the BMC answers
      // again once the step has failed, before Ironic powers the node off.
      let failed: AgentCommand | undefined;
      for (let i = 0; i < 1200 && !failed; i++) {
        await delay(100);
        failed = (await agentCommands(agentPort)).find((c) => c.command_name === 'execute_clean_step' && c.command_status === 'FAILED');
      }
      bmc.resume();
      paused = false;
      assert.ok(failed, 'the agent ran the clean step and it failed');
      assert.match(JSON.stringify(failed.command_error), /timed out after 2000 ms/, 'the step failed on the BMC that stopped answering');
      const { code, record } = await running;
      assert.equal(code, 1, `expected a failed rotation: ${JSON.stringify(record.steps)}`);
      assert.equal(record.failedStep, 'clean');
      assert.match(record.error ?? '', /set_bmc_credentials/);
      assert.equal(record.current.username, 'admin', 'the record names the credential Ironic still holds');
      assert.ok(record.rolledBack.includes('node moved clean failed → manageable'), record.rolledBack.join('; '));
      assert.equal(record.next.secretState, 'failed');
      const n = await ironic.node(node.uuid);
      assert.equal(n.provision_state, 'manageable');
      assert.equal(n.driver_info.ipmi_username, 'admin');
      assert.equal(await ironicPowerCheck(), null, 'Ironic still reaches the BMC as admin');
      assert.ok((await bmc.lanplusLogin('admin', INITIAL)).ok);
      const hist = await new FileSecretStore({ path: storePath }).history(node.uuid);
      assert.deepEqual(hist.map((e) => e.state), ['failed', 'failed']);
      // Ironic 21.4 puts a node whose clean *step* failed into maintenance (fault
      // "clean failure"); the rotation clears what it caused, so the next
      // rotation is not refused, and says so in its record.
      assert.equal(n.maintenance, false, 'the rotation took the node out of the maintenance its failed step caused');
      assert.ok(record.rolledBack.some((r: string) => r.includes('clean failure')), `rolledBack: ${JSON.stringify(record.rolledBack)}`);
    } catch (e) {
      throw diagnose(e);
    } finally {
      if (paused) bmc.resume();
      gate?.release();
    }
  });

  it('a retry rotates, then a rotation with the Barbican store keeps the password in Barbican', { skip }, async () => {
    try {
      const first = await rotate();
      assert.equal(first.code, 0, `${first.record.failedStep}: ${first.record.error}`);
      assert.equal(first.record.current.username, 'ironic');
      assert.equal(await ironicPowerCheck(), null);
      assert.equal((await bmc.lanplusLogin('admin', INITIAL)).ok, false, 'the initial admin password is retired');
      const fileCur = await new FileSecretStore({ path: storePath }).getCurrent(node.uuid);
      assert.ok(fileCur);
      const filePw = recordSecret(fileCur.secret.reveal());
      if (skipBarbican) return;
      const project = randomUUID();
      // The file store's current password is the one Ironic holds; the Barbican store starts empty for this node.
      const second = await rotate('--store', 'barbican', '--barbican-url', (barbican as Barbican).url, '--barbican-project-id', project);
      assert.equal(second.code, 0, `${second.record.failedStep}: ${second.record.error}`);
      assert.equal(second.record.current.username, 'ironic_b');
      assert.equal(second.record.next.store, 'barbican');
      const cur = await new BarbicanSecretStore({ url: (barbican as Barbican).url, auth: { projectId: project } }).getCurrent(node.uuid);
      assert.ok(cur && cur.entry.id === second.record.next.secretId && cur.entry.username === 'ironic_b');
      const pw = recordSecret(cur.secret.reveal());
      assert.equal(await ironicPowerCheck(), null, 'Ironic works with the password kept in Barbican');
      assert.ok((await bmc.lanplusLogin('ironic_b', pw)).ok);
      assert.equal((await bmc.lanplusLogin('ironic', filePw)).ok, false, 'the previous password no longer logs in');
    } catch (e) {
      throw diagnose(e);
    }
  });
});
