/**
 * `inband-agent conductor rotate` end to end with the real Ironic from Debian
 * (21.4, standalone, noauth, sqlite), a real BMC (ipmi_sim, whose power-on
 * starts our agent) and the file store: rotate twice. After each rotation
 * Ironic's own power status call works with the new credential, the new user
 * logs in over lanplus, the previous password no longer does, the store holds
 * the new password as current, and neither the record nor the output holds it.
 * The first rotation runs through the CLI, the second through the
 * vendor-passthru-shaped HTTP endpoint (conductor/passthru.ts).
 * This Ironic runs without fast track, so the clean boots a fresh agent and
 * no certificate exists to seal the password to beforehand: the plain step
 * args are allowed here, and their warning is the only one expected. The
 * sealed path is rotate-sealed-ironic.test.ts.
 *
 * Needs scripts/install-ironic.sh and a build (dist/). Gated by INBAND_TEST_IRONIC=1.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IpmitoolProver } from '../../conductor/bmc-proof.js';
import { main } from '../../conductor/cli.js';
import { IronicApi } from '../../conductor/ironic-api.js';
import { createPassthruHandler } from '../../conductor/passthru.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import { rotate, type RotationRecord } from '../../conductor/rotate.js';
import { Secret } from '../../service/secret.js';
import { agentRamdiskCommand, projectRoot, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, Ironic, startNodeBmc, type NodeBmc } from '../harness/ironic.js';
import { captureLines, recordSecret, testLogDir } from '../helpers/secrets.js';

const skip = skipUnlessIronic('real-Ironic end-to-end test');

/** The plain-args warning is expected here (see above); any other warning fails. */
const onlyPlainArgsWarning = (r: RotationRecord): boolean => r.warnings.every((w) => w.startsWith('PLAIN PASSWORD IN STEP ARGS'));

const TOKEN = recordSecret(`passthru-${Math.random().toString(36).slice(2)}`);

async function viaCli(out: string[], err: string[]): Promise<{ code: number; record: RotationRecord }> {
  const code = await main(['conductor', 'rotate', 'rotate-e2e', '--ironic-url', ironicUrl, '--store-path', storePathOf, '--clean-timeout', '300', '--allow-plain-args'], {
    stdout: (s) => out.push(s), stderr: (s) => err.push(s), env: { PATH: process.env.PATH },
  });
  const record = JSON.parse(out.join('')) as RotationRecord;
  return { code: code === 3 && onlyPlainArgsWarning(record) ? 0 : code, record };
}

async function viaHttp(store: FileSecretStore, err: string[]): Promise<{ code: number; record: RotationRecord }> {
  const handler = createPassthruHandler({
    token: Secret.fromString(TOKEN),
    rotate: (node) => rotate({
      node, ironic: new IronicApi({ url: ironicUrl }), store, prover: new IpmitoolProver(), usernames: ['ironic', 'ironic_b'],
      cleanTimeoutMs: 300_000, allowPlainArgs: true, log: (l) => err.push(l + '\n'),
    }),
    log: (l) => err.push(l + '\n'),
  });
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const h = { 'X-Auth-Token': TOKEN, 'Content-Type': 'application/json' };
    const started = await fetch(`${base}/v1/nodes/rotate-e2e/vendor_passthru?method=set_bmc_credentials`, { method: 'POST', headers: h, body: '{}' });
    assert.equal(started.status, 202);
    const href = String(((await started.json()) as { href: string }).href);
    for (let i = 0; i < 1200; i++) {
      const s = (await (await fetch(base + href, { headers: h })).json()) as { status: string; record?: RotationRecord };
      if (s.status === 'done' && s.record) return { code: s.record.outcome === 'rotated' && onlyPlainArgsWarning(s.record) ? 0 : 1, record: s.record };
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the passthru rotation did not finish');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

let ironicUrl = '';
let storePathOf = '';

const INITIAL = recordSecret('initpw-rotate1');

describe('conductor rotate against the real Ironic', () => {
  let ironic: Ironic;
  let bmc: NodeBmc;
  let work: string;
  let agentLog: string;

  before(async () => {
    if (skip) return;
    const root = projectRoot();
    if (!existsSync(join(root, 'dist', 'agent', 'cli.js'))) throw new Error('dist/agent/cli.js is missing: run npm run build first');
    ironic = await Ironic.start();
    work = mkdtempSync(join(tmpdir(), 'rotate-e2e-'));
    agentLog = join(testLogDir() ?? work, `rotate-e2e-agent-${process.pid}.log`);
    const port = await freeLoopbackPort();
    const startCmd = agentRamdiskCommand({ apiUrl: ironic.url, port, stateDir: join(work, 'agent'), logFile: agentLog });
    bmc = await startNodeBmc({ startCmd, users: [{ id: 2, name: 'admin', password: INITIAL, privilege: 'admin' }] });
  });

  after(async () => {
    if (bmc) await bmc.stop();
    if (ironic) await ironic.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('rotates twice between ironic and ironic_b; each time Ironic works with the new credential and the previous one is dead', { skip }, async () => {
    const node = await ironic.enrollIpmiNode('rotate-e2e', bmc.lanPort, 'admin', INITIAL);
    const storePath = join(work, 'store', 'secrets.json');
    ironicUrl = ironic.url;
    storePathOf = storePath;
    const store = new FileSecretStore({ path: storePath });
    const out: string[] = [];
    const err: string[] = [];
    try {
      await ironic.provision(node.uuid, 'manage');
      await ironic.waitForState(node.uuid, 'manageable', 60_000);

      let previous = { user: 'admin', password: INITIAL };
      for (const expected of ['ironic', 'ironic_b']) {
        const t0 = Date.now();
        out.length = 0;
        // The first rotation through the CLI, the second through the vendor-passthru-shaped HTTP endpoint.
        const { code, record } = expected === 'ironic' ? await viaCli(out, err) : await viaHttp(store, err);
        assert.equal(code, 0, `rotation to ${expected}: ${record.failedStep} ${record.error} ${record.warnings.join('; ')}`);
        assert.equal(record.outcome, 'rotated');
        assert.equal(record.next.username, expected);
        assert.equal(record.current.username, expected);
        const cur = await store.getCurrent(node.uuid);
        assert.ok(cur, 'the store holds a current password');
        assert.equal(cur.entry.username, expected);
        assert.equal(cur.entry.id, record.next.secretId);
        const pw = recordSecret(cur.secret.reveal());
        assert.ok(!out.join('').includes(pw) && !err.join('').includes(pw), 'neither the record nor the log holds the password');

        const n = await ironic.node(node.uuid);
        assert.equal(n.provision_state, 'manageable', 'the node is back where it was');
        assert.equal(n.driver_info.ipmi_username, expected);
        // Ironic's own power status call, with the credential it now holds.
        const r = await ironic.api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: n.power_state });
        assert.equal(r.status, 202);
        let after = await ironic.node(node.uuid);
        for (let i = 0; i < 120 && after.target_power_state; i++) {
          await new Promise((res) => setTimeout(res, 250));
          after = await ironic.node(node.uuid);
        }
        assert.equal(after.last_error, null, `Ironic reaches the BMC as ${expected}`);

        assert.ok((await bmc.lanplusLogin(expected, pw)).ok, `${expected} logs in over lanplus`);
        assert.equal((await bmc.lanplusLogin(previous.user, previous.password)).ok, false, `the previous password of ${previous.user} no longer logs in`);
        const states = (await store.history(node.uuid)).map((e) => e.state);
        assert.deepEqual(states, ['current'], 'superseded values are deleted once the previous user is retired');
        console.log(`# rotate to ${expected}: ${Date.now() - t0} ms`);
        previous = { user: expected, password: pw };
      }
      const dir = join(work, 'store', 'records');
      const records = readdirSync(dir);
      assert.equal(records.length, 1, 'the CLI keeps its record');
      for (const f of records) assert.ok(!readFileSync(join(dir, f), 'utf8').includes(previous.password));
      assert.ok(!readFileSync(storePath, 'utf8').includes(previous.password), 'the store file holds no plain password');
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
      captureLines('conductor-rotate-e2e', err.join(''));
    }
  });
});
