/**
 * Issue #6 item 4 on the real Ironic (Debian 21.4, noauth, sqlite) with
 * `[deploy] fast_track = true`: the node's agent is already running (powered on
 * in `manageable`), heartbeats with its auto-TLS certificate, and Ironic pins
 * it under certificates_path. `conductor rotate` seals the new BMC password to
 * that certificate; the manual clean runs on the same agent (fast track: no
 * reboot, same key), which opens it. Rotated twice. During and after each
 * rotation, what Ironic keeps of the step (`GET /v1/nodes/{id}?fields=
 * driver_internal_info,clean_step` at 1.82) and Ironic's own DEBUG log hold
 * no plain password — only `password_sealed` — and the new credential works:
 * a lanplus login and Ironic's own power call. The second rotation keeps the
 * password in a real Barbican when python3-barbican is installed (issue #6
 * scenario 3: the plain password is only in Barbican and driver_info).
 * Last, a password sealed to another agent's certificate is refused by the
 * running agent naming password_sealed; the clean fails and nothing is written.
 *
 * Needs scripts/install-ironic.sh and a build (dist/). Gated by INBAND_TEST_IRONIC=1.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { main } from '../../conductor/cli.js';
import { randomUUID } from 'node:crypto';
import { BarbicanSecretStore } from '../../conductor/barbican-store.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { SecretStore } from '../../conductor/secret-store.js';
import { Barbican, barbicanAvailability } from '../harness/barbican.js';
import type { RotationRecord } from '../../conductor/rotate.js';
import { agentRamdiskCommand, delay, projectRoot, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, HARNESS_API_VERSION, Ironic, startNodeBmc, type NodeBmc } from '../harness/ironic.js';
import { captureLines, recordSecret, testLogDir } from '../helpers/secrets.js';

const skip = skipUnlessIronic('real-Ironic end-to-end test');

const INITIAL = recordSecret('initpw-sealed1');
const barbicanAvail = barbicanAvailability();

describe('sealed step arguments against the real Ironic (fast track)', () => {
  let ironic: Ironic;
  let bmc: NodeBmc;
  let barbican: Barbican | undefined;
  let work: string;
  let agentLog: string;

  before(async () => {
    if (skip) return;
    const root = projectRoot();
    if (!existsSync(join(root, 'dist', 'agent', 'cli.js'))) throw new Error('dist/agent/cli.js is missing: run npm run build first');
    // A later [deploy] section overrides the harness's fast_track = false.
    ironic = await Ironic.start({ extraConf: '[deploy]\nfast_track = true\n' });
    work = mkdtempSync(join(tmpdir(), 'rotate-sealed-'));
    agentLog = join(testLogDir() ?? work, `rotate-sealed-agent-${process.pid}.log`);
    const port = await freeLoopbackPort();
    const startCmd = agentRamdiskCommand({ apiUrl: ironic.url, port, stateDir: join(work, 'agent'), logFile: agentLog });
    bmc = await startNodeBmc({ startCmd, users: [{ id: 2, name: 'admin', password: INITIAL, privilege: 'admin' }] });
    if (barbicanAvail.available) barbican = await Barbican.start();
    else console.log(`# second rotation uses the file store: ${barbicanAvail.reason}`);
  });

  after(async () => {
    if (bmc) await bmc.stop();
    await barbican?.stop();
    if (ironic) await ironic.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('rotates twice with the password sealed to the running agent; Ironic never holds it in step records or logs', { skip }, async () => {
    const node = await ironic.enrollIpmiNode('rotate-sealed', bmc.lanPort, 'admin', INITIAL);
    const storePath = join(work, 'store', 'secrets.json');
    const project = randomUUID();
    const err: string[] = [];
    const seen: string[] = [];
    try {
      await ironic.provision(node.uuid, 'manage');
      await ironic.waitForState(node.uuid, 'manageable', 60_000);
      // Power on: the BMC starts the agent, which looks up (fast track allows it in manageable) and heartbeats its certificate.
      const on = await ironic.api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: 'power on' });
      assert.equal(on.status, 202);
      let pinned: unknown;
      for (let i = 0; i < 240 && !pinned; i++) {
        await delay(250);
        pinned = (await ironic.node(node.uuid)).driver_internal_info.agent_verify_ca;
      }
      assert.equal(typeof pinned, 'string', 'Ironic pinned the running agent\'s certificate');
      assert.ok(readFileSync(String(pinned), 'utf8').includes('BEGIN CERTIFICATE'));

      let previous = { user: 'admin', password: INITIAL };
      for (const expected of ['ironic', 'ironic_b']) {
        const t0 = Date.now();
        const out: string[] = [];
        const viaBarbican = expected === 'ironic_b' && barbican !== undefined;
        const storeArgs = viaBarbican ? ['--store', 'barbican', '--barbican-url', (barbican as Barbican).url, '--barbican-project-id', project] : ['--store-path', storePath];
        const store: SecretStore = viaBarbican ? new BarbicanSecretStore({ url: (barbican as Barbican).url, auth: { projectId: project } }) : new FileSecretStore({ path: storePath });
        // Watch what Ironic's API returns of the step while the rotation runs.
        let watching = true;
        const watcher = (async () => {
          while (watching) {
            const r = await fetch(`${ironic.url}/v1/nodes/${node.uuid}?fields=driver_internal_info,clean_step`, { headers: { 'X-OpenStack-Ironic-API-Version': HARNESS_API_VERSION } });
            seen.push(await r.text());
            await delay(200);
          }
        })();
        const code = await main(['conductor', 'rotate', node.uuid, '--ironic-url', ironic.url, ...storeArgs, '--records-dir', join(work, 'records'), '--clean-timeout', '300'], {
          stdout: (s) => out.push(s), stderr: (s) => err.push(s), env: { PATH: process.env.PATH },
        });
        watching = false;
        await watcher;
        const record = JSON.parse(out.join('')) as RotationRecord;
        assert.equal(code, 0, `rotation to ${expected}: ${record.failedStep} ${record.error} ${record.warnings.join('; ')}`);
        assert.equal(record.next.username, expected);
        assert.equal(record.stepArgs?.password, 'sealed');
        assert.equal(record.stepArgs?.certificate, pinned);
        const cur = await store.getCurrent(node.uuid);
        assert.ok(cur && cur.entry.id === record.next.secretId, `the ${store.kind} store holds the new password as current`);
        const pw = recordSecret(cur.secret.reveal());

        const after = await fetch(`${ironic.url}/v1/nodes/${node.uuid}?fields=driver_internal_info,clean_step`, { headers: { 'X-OpenStack-Ironic-API-Version': HARNESS_API_VERSION } });
        seen.push(await after.text());
        assert.ok(seen.some((t) => t.includes('password_sealed')), 'Ironic kept the sealed value of the step while it ran');
        for (const t of seen) assert.ok(!t.includes(pw), 'Ironic\'s API returned the plain password');
        assert.ok(!ironic.log().includes(pw), 'Ironic logged the plain password');
        assert.ok(ironic.log().includes('password_sealed'), 'Ironic logged the step (sealed)');
        assert.ok(!out.join('').includes(pw) && !err.join('').includes(pw), 'neither the record nor the conductor log holds the password');
        assert.ok(!readFileSync(agentLog, 'utf8').includes(pw), 'the agent log holds no password');

        const n = await ironic.node(node.uuid);
        assert.equal(n.provision_state, 'manageable');
        assert.equal(n.driver_info.ipmi_username, expected);
        const r = await ironic.api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: n.power_state });
        assert.equal(r.status, 202);
        let a = await ironic.node(node.uuid);
        for (let i = 0; i < 120 && a.target_power_state; i++) {
          await delay(250);
          a = await ironic.node(node.uuid);
        }
        assert.equal(a.last_error, null, `Ironic reaches the BMC as ${expected}`);
        assert.ok((await bmc.lanplusLogin(expected, pw)).ok, `${expected} logs in over lanplus`);
        assert.equal((await bmc.lanplusLogin(previous.user, previous.password)).ok, false, `the previous password of ${previous.user} no longer logs in`);
        console.log(`# sealed rotation to ${expected} (${store.kind} store): ${Date.now() - t0} ms, agent key ${record.stepArgs?.agentKeyId}`);
        previous = { user: expected, password: pw };
      }

      // A value sealed to another agent's certificate: the running agent refuses
      // it naming password_sealed, the clean fails, nothing reaches the BMC, and
      // Ironic keeps the credential it holds.
      const otherCert = join(work, 'other-agent.crt');
      writeFileSync(otherCert, generateSelfSigned({ address: '127.0.0.1', commonName: 'another-agent' }).certPem);
      const out: string[] = [];
      const code = await main(['conductor', 'rotate', node.uuid, '--ironic-url', ironic.url, '--store-path', storePath, '--records-dir', join(work, 'records'),
        '--clean-timeout', '300', '--agent-cert', otherCert], { stdout: (s) => out.push(s), stderr: (s) => err.push(s), env: { PATH: process.env.PATH } });
      const failed = JSON.parse(out.join('')) as RotationRecord;
      assert.equal(code, 1);
      assert.equal(failed.failedStep, 'clean');
      console.log(`# refused by the agent: ${failed.error}`);
      assert.match(failed.error ?? '', /password_sealed: sealed for another agent key/);
      assert.equal(failed.current.username, previous.user);
      const n = await ironic.node(node.uuid);
      assert.equal(n.provision_state, 'manageable');
      assert.equal(n.driver_info.ipmi_username, previous.user);
      const fileStore = new FileSecretStore({ path: storePath });
      const entry = (await fileStore.history(node.uuid)).find((e) => e.id === failed.next.secretId);
      assert.equal(entry?.state, 'failed');
      const never = recordSecret((await fileStore.getSecret(node.uuid, failed.next.secretId as string)).reveal());
      assert.equal((await bmc.lanplusLogin(failed.next.username as string, never)).ok, false, 'the refused password never reached the BMC');
      assert.ok((await bmc.lanplusLogin(previous.user, previous.password)).ok, 'Ironic\'s credential still logs in');
    } catch (e) {
      const scrub = (x: string): string => x.replace(/ipmi_password[^,}]*/g, 'ipmi_password ***').replace(/"password": "[^"]*"/g, '"password": "***"');
      let log = '(no agent log)';
      try {
        log = readFileSync(agentLog, 'utf8').slice(-4000);
      } catch {
        // none
      }
      throw new Error(scrub(`${(e as Error).message}\n--- conductor:\n${err.join('').slice(-4000)}\n--- agent log tail:\n${log}\n--- ironic log tail:\n${ironic.log().slice(-4000)}`));
    } finally {
      captureLines('conductor-rotate-sealed-e2e', err.join(''));
    }
  });
});
