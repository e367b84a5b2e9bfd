/**
 * Issue #13 end to end: the `set_bmc_credentials` vendor passthru inside a
 * real, unmodified Ironic (Debian 21.4) with ironic-driver installed
 * (`ironic-driver/install.sh --target`), behind a real Keystone
 * (`auth_strategy = keystone`), driven by the real `openstack baremetal` CLI
 * authenticating with a password. The node's power interface is ipmitool to
 * an ipmi_sim BMC whose power-on starts our agent; the agent serves in fast
 * track (manageable, powered on) with its auto-TLS certificate pinned.
 *
 * 1. An existing `ipmi` node is moved to `ipmi-inband` / `inband-bmc`;
 *    `passthru list` shows the method with its description.
 * 2. Refused with 4xx before anything moves: no agent (naming fast track,
 *    manual clean, service step), a username the contract refuses, a caller
 *    password not asked for explicitly, an unknown node.
 * 3. Two rotations through the CLI (admin → ironic, ironic → ironic_b):
 *    afterwards the new user logs in over lanplus, the previous one does not,
 *    driver_info holds the new one, a power call through Ironic works.
 * 4. `conductor rotate` on the same node with a Keystone token (ironic_b →
 *    ironic), timed beside the passthru; then `conductor serve`'s own
 *    passthru port, with the same token (ironic → ironic_b).
 * No secret in any log: Ironic's, Keystone's, the agent's, the CLI's.
 *
 * Needs scripts/install-ironic.sh, scripts/install-keystone.sh and a build. Gated by INBAND_TEST_IRONIC=1.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../conductor/cli.js';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { RotationRecord } from '../../conductor/rotate.js';
import { agentRamdiskCommand, delay, IRONIC_E2E, projectRoot, skipUnlessIronic } from '../harness/e2e.js';
import { freeLoopbackPort, Ironic, startNodeBmc, SYSTEM_PYTHON, type IronicNode, type NodeBmc } from '../harness/ironic.js';
import { Keystone, keystoneAvailability } from '../harness/keystone.js';
import { captureLines, recordSecret, testLogDir } from '../helpers/secrets.js';

const ks = IRONIC_E2E ? keystoneAvailability() : { available: false, reason: '' };
const skip = skipUnlessIronic('real-Ironic end-to-end test', 'scripts/install-ironic.sh, scripts/install-keystone.sh');

const INITIAL = recordSecret('initpw-passthru1');

interface CliResult { code: number | null; stdout: string; stderr: string }

/** A JSON call to conductor serve's HTTPS port, trusting only its own certificate. */
function httpsJson(method: string, url: string, token: string, ca: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, ca, headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

describe('set_bmc_credentials as an Ironic vendor passthru, behind Keystone, from the openstack CLI', () => {
  let keystone: Keystone;
  let ironic: Ironic;
  let bmc: NodeBmc;
  let work: string;
  let agentLog: string;
  const transcript: string[] = [];

  /** The real openstack CLI, password auth from the environment (nothing secret on argv). */
  const openstack = (args: string[]): Promise<CliResult> => new Promise((resolve) => {
    const child = spawn('/usr/bin/openstack', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: work, ...keystone.clientEnv(), OS_BAREMETAL_API_VERSION: '1.78' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => {
      transcript.push(`$ openstack ${args.join(' ')}`, ...(stdout.trim() ? [stdout.trimEnd()] : []), ...(stderr.trim() ? [stderr.trimEnd()] : []),
        ...(code !== 0 ? [`(exit ${code})`] : []));
      resolve({ code, stdout, stderr });
    });
  });

  /** What Ironic keeps in its database for the node (the API masks passwords; the test reads the truth). */
  const storedDriverInfo = (uuid: string): Record<string, unknown> => {
    const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nprint(c.execute("select driver_info from nodes where uuid = ?", (sys.argv[2],)).fetchone()[0])',
      join(ironic.stateDir, 'ironic.sqlite'), uuid], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  const waitRotation = async (uuid: string, after: string | null): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 600; i++) {
      const n = await ironic.node(uuid);
      const rec = n.driver_internal_info.inband_bmc_rotation as Record<string, unknown> | undefined;
      if (rec && rec.started_at !== after && !n.reservation) return rec;
      await delay(200);
    }
    throw new Error('the passthru left no record in driver_internal_info.inband_bmc_rotation');
  };

  before(async () => {
    if (skip) return;
    if (!ks.available) throw new Error(ks.reason);
    const root = projectRoot();
    if (!existsSync(join(root, 'dist', 'agent', 'cli.js'))) throw new Error('dist/agent/cli.js is missing: run npm run build first');
    work = mkdtempSync(join(tmpdir(), 'passthru-ks-'));
    const site = join(work, 'site');
    const inst = spawnSync('/bin/sh', [join(root, 'ironic-driver', 'install.sh'), '--target', site], { encoding: 'utf8' });
    assert.equal(inst.status, 0, inst.stderr);
    transcript.push(`$ ironic-driver/install.sh --target ${site}`, inst.stdout.trimEnd());
    keystone = await Keystone.start();
    recordSecret(keystone.admin.password);
    ironic = await Ironic.start({
      keystone, pythonPath: site,
      extraConf: [
        '[DEFAULT]', 'enabled_hardware_types = fake-hardware,ipmi,ipmi-inband',
        'enabled_vendor_interfaces = fake,ipmitool,no-vendor,inband-bmc', '',
        '[deploy]', 'fast_track = true', '',
      ].join('\n'),
    });
    agentLog = join(testLogDir() ?? work, `passthru-keystone-agent-${process.pid}.log`);
    const port = await freeLoopbackPort();
    const startCmd = agentRamdiskCommand({ apiUrl: ironic.url, port, stateDir: join(work, 'agent'), logFile: agentLog });
    bmc = await startNodeBmc({ startCmd, users: [{ id: 2, name: 'admin', password: INITIAL, privilege: 'admin' }] });
  });

  after(async () => {
    if (bmc) await bmc.stop();
    if (ironic) await ironic.stop();
    if (keystone) await keystone.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('rotates through Ironic\'s API with no lock-out, refuses bad input first, and beside conductor rotate', { skip }, async () => {
    const err: string[] = [];
    try {
      // Without a token Ironic refuses: it really is behind Keystone.
      assert.equal((await fetch(`${ironic.url}/v1/nodes`)).status, 401);
      const enrolled = await ironic.enrollIpmiNode('passthru-ks', bmc.lanPort, 'admin', INITIAL);
      const uuid = enrolled.uuid;
      let r = await openstack(['baremetal', 'node', 'set', uuid, '--driver', 'ipmi-inband', '--vendor-interface', 'inband-bmc']);
      assert.equal(r.code, 0, r.stderr);
      r = await openstack(['baremetal', 'node', 'show', uuid, '-f', 'json', '-c', 'driver', '-c', 'vendor_interface']);
      assert.deepEqual(JSON.parse(r.stdout), { driver: 'ipmi-inband', vendor_interface: 'inband-bmc' });
      r = await openstack(['baremetal', 'node', 'passthru', 'list', uuid, '-f', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const methods = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      const m = methods.find((x) => x.Name === 'set_bmc_credentials');
      assert.ok(m, `passthru list shows set_bmc_credentials: ${r.stdout}`);
      assert.match(String(m.Description), /Rotate the BMC credential in-band/);
      assert.equal(m.Async, true);

      await ironic.provision(uuid, 'manage');
      await ironic.waitForState(uuid, 'manageable', 60_000);

      // No agent yet: 400 naming what to do; nothing stored, the BMC untouched.
      r = await openstack(['baremetal', 'node', 'passthru', 'call', uuid, 'set_bmc_credentials', '--arg', 'username=ironic']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /HTTP 400/);
      assert.match(r.stderr, /no agent is reachable/);
      assert.match(r.stderr, /fast track/);
      assert.match(r.stderr, /manual\s+clean/);
      assert.match(r.stderr, /service step/);

      // Power on through the CLI: the BMC starts the agent, which looks up and heartbeats its certificate.
      r = await openstack(['baremetal', 'node', 'power', 'on', uuid]);
      assert.equal(r.code, 0, r.stderr);
      let pinned: unknown;
      for (let i = 0; i < 240 && !pinned; i++) {
        await delay(250);
        pinned = (await ironic.node(uuid)).driver_internal_info.agent_verify_ca;
      }
      assert.equal(typeof pinned, 'string', 'Ironic pinned the running agent\'s certificate');

      // Bad input with an agent running: refused before anything is generated or sent.
      for (const [args, why] of [
        // The messages are the credential contract's rule, as every TypeScript door says it.
        [['--arg', 'username=bad name'], /username: must be 1-16 ASCII letters, digits/],
        [['--arg', 'username=abcdefghijklmno'], /username \(its pair abcdefghijklmno_b, the second BMC user\): must be 1-16 ASCII/],
        [['--arg', 'username=ironic', '--arg', 'password=Chosen-by-caller1'], /never taken from the caller unless use_given_password=true/],
        [['--arg', 'username=ironic', '--arg', 'slot=1'], /unknown argument\(s\) slot/],
        [[], /username is required/],
      ] as Array<[string[], RegExp]>) {
        r = await openstack(['baremetal', 'node', 'passthru', 'call', uuid, 'set_bmc_credentials', ...args]);
        assert.notEqual(r.code, 0, `refused: ${args.join(' ')}`);
        assert.match(r.stderr, /HTTP 400/);
        assert.match(r.stderr, why);
      }
      r = await openstack(['baremetal', 'node', 'passthru', 'call', 'no-such-node', 'set_bmc_credentials', '--arg', 'username=ironic']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /could not be found|HTTP 404/);
      const untouched = storedDriverInfo(uuid);
      assert.equal(untouched.ipmi_username, 'admin');
      assert.ok(untouched.ipmi_password === INITIAL, 'driver_info keeps the password it had');
      assert.ok(!Object.keys(untouched).some((k) => k.startsWith('inband_bmc_')), 'nothing stored for refused calls');
      assert.equal((await ironic.node(uuid)).driver_internal_info.inband_bmc_rotation, undefined);
      assert.ok((await bmc.lanplusLogin('admin', INITIAL)).ok, 'the BMC is untouched');

      let previous = { user: 'admin', password: INITIAL };
      let last: string | null = null;
      const timings: string[] = [];
      for (const expected of ['ironic', 'ironic_b']) {
        const t0 = Date.now();
        r = await openstack(['baremetal', 'node', 'passthru', 'call', uuid, 'set_bmc_credentials', '--arg', 'username=ironic']);
        assert.equal(r.code, 0, r.stderr);
        const rec = await waitRotation(uuid, last);
        const ms = Date.now() - t0;
        last = rec.started_at as string;
        transcript.push(`# driver_internal_info.inband_bmc_rotation after ${ms} ms:`, JSON.stringify(rec, null, 1));
        assert.equal(rec.outcome, 'rotated', JSON.stringify(rec));
        assert.equal((rec.next as Record<string, unknown>).username, expected);
        assert.deepEqual((rec.steps as Array<{ step: string; status: string }>).map((s) => `${s.step}:${s.status}`),
          ['store-pending:ok', 'set-in-band:ok', 'prove:ok', 'update-ironic:ok', 'store-current:ok', 'retire-previous:ok', 'delete-superseded:ok']);
        // Retired only on the BMC's own read-back (§22.27; ipmi_sim reports no enable status, so IPMI messaging).
        const retired = (rec.steps as Array<{ step: string; detail: string }>).find((s) => s.step === 'retire-previous')!;
        assert.match(retired.detail, new RegExp(`^user \\d+ \\(${previous.user}\\) disabled, reads back disabled \\(IPMI messaging off\\)$`));
        console.log(`# retire-previous: ${retired.detail}; inside Ironic ${rec.started_at as string} → ${rec.finished_at as string}`);
        const stored = storedDriverInfo(uuid);
        assert.equal(stored.ipmi_username, expected);
        assert.ok(!('inband_bmc_pending_password' in stored), 'no pending password left in driver_info');
        const pw = recordSecret(String(stored.ipmi_password));
        assert.ok(pw !== previous.password, 'a new password');
        assert.ok((await bmc.lanplusLogin(expected, pw)).ok, `${expected} logs in over lanplus`);
        assert.equal((await bmc.lanplusLogin(previous.user, previous.password)).ok, false, `${previous.user} no longer logs in`);
        r = await openstack(['baremetal', 'node', 'show', uuid, '-f', 'json', '-c', 'driver_info', '-c', 'last_error']);
        const shown = JSON.parse(r.stdout) as { driver_info: Record<string, unknown>; last_error: unknown };
        assert.equal(shown.driver_info.ipmi_username, expected);
        assert.equal(shown.driver_info.ipmi_password, '******');
        assert.equal(shown.last_error, null);
        // The node is on: a power-on request makes Ironic read the BMC with the new driver_info and change nothing.
        r = await openstack(['baremetal', 'node', 'power', 'on', '--power-timeout', '60', uuid]);
        assert.equal(r.code, 0, r.stderr);
        const n: IronicNode = await ironic.node(uuid);
        assert.equal(n.power_state, 'power on');
        assert.equal(n.last_error, null, `Ironic reaches the BMC as ${expected}`);
        timings.push(`passthru rotation ${previous.user} → ${expected}: ${ms} ms (CLI call to record)`);
        console.log(`# ${timings[timings.length - 1]}`);
        previous = { user: expected, password: pw };
      }

      // conductor rotate on the same node, authenticated with a Keystone token.
      const token = await keystone.token();
      recordSecret(token);
      const storePath = join(work, 'store', 'secrets.json');
      const out: string[] = [];
      const t0 = Date.now();
      const code = await main(['conductor', 'rotate', uuid, '--ironic-url', ironic.url, '--store-path', storePath, '--records-dir', join(work, 'records'), '--clean-timeout', '300'], {
        stdout: (s) => out.push(s), stderr: (s) => err.push(s), env: { PATH: process.env.PATH, IRONIC_AUTH_TOKEN: token },
      });
      const ms = Date.now() - t0;
      const record = JSON.parse(out.join('')) as RotationRecord;
      assert.equal(code, 0, `conductor rotate: ${record.failedStep} ${record.error} ${record.warnings.join('; ')}`);
      assert.equal(record.next.username, 'ironic');
      const cur = await new FileSecretStore({ path: storePath }).getCurrent(uuid);
      assert.ok(cur);
      const pw = recordSecret(cur.secret.reveal());
      assert.ok((await bmc.lanplusLogin('ironic', pw)).ok);
      assert.equal((await bmc.lanplusLogin(previous.user, previous.password)).ok, false);
      assert.equal(storedDriverInfo(uuid).ipmi_username, 'ironic');
      timings.push(`conductor rotate ${previous.user} → ironic: ${ms} ms`);
      console.log(`# ${timings[timings.length - 1]}`);
      previous = { user: 'ironic', password: pw };

      // conductor serve's own passthru port, with the same Keystone token for Ironic.
      const apiToken = recordSecret(randomBytes(24).toString('base64url'));
      const stop = new AbortController();
      const serveOut: string[] = [];
      const serving = main(['conductor', 'serve', '--ironic-url', ironic.url, '--listen', '127.0.0.1:0', '--store-path', storePath, '--records-dir', join(work, 'records')], {
        stdout: (s) => serveOut.push(s), stderr: (s) => err.push(s), signal: stop.signal,
        env: { PATH: process.env.PATH, IRONIC_AUTH_TOKEN: token, CONDUCTOR_AUTH_TOKEN: apiToken },
      });
      let served: { listening: string; certificate: string } | undefined;
      for (let i = 0; i < 100 && !served; i++) {
        await delay(100);
        if (serveOut.length) served = JSON.parse(serveOut.join('')) as { listening: string; certificate: string };
      }
      assert.ok(served, 'conductor serve is listening');
      const ca = readFileSync(served.certificate, 'utf8');
      const t1 = Date.now();
      const started = await httpsJson('POST', `${served.listening}/v1/nodes/${uuid}/vendor_passthru?method=set_bmc_credentials`, apiToken, ca);
      assert.equal(started.status, 202);
      let done: { status: string; record?: RotationRecord } = { status: 'running' };
      for (let i = 0; i < 600 && done.status !== 'done'; i++) {
        await delay(250);
        done = (await httpsJson('GET', `${served.listening}/v1/rotations/${String(started.body.rotation)}`, apiToken, ca)).body as typeof done;
      }
      stop.abort();
      assert.equal(await serving, 0);
      assert.equal(done.record?.outcome, 'rotated', `conductor serve: ${done.record?.failedStep} ${done.record?.error}`);
      assert.equal(done.record?.next.username, 'ironic_b');
      const served2 = await new FileSecretStore({ path: storePath }).getCurrent(uuid);
      assert.ok(served2);
      const pw2 = recordSecret(served2.secret.reveal());
      assert.ok((await bmc.lanplusLogin('ironic_b', pw2)).ok);
      assert.equal((await bmc.lanplusLogin(previous.user, previous.password)).ok, false);
      timings.push(`conductor serve passthru ironic → ironic_b: ${Date.now() - t1} ms`);
      console.log(`# ${timings[timings.length - 1]}`);

      // No secret anywhere a log goes.
      const secrets = [INITIAL, keystone.admin.password, previous.password, pw, pw2, token, apiToken];
      const logs = { ironic: ironic.log(), keystone: keystone.log(), agent: readFileSync(agentLog, 'utf8'), cli: transcript.join('\n'), conductor: err.join('') };
      for (const [where, text] of Object.entries(logs)) {
        for (const s of secrets) assert.ok(!text.includes(s), `the ${where} log holds a secret`);
      }
      assert.ok(logs.ironic.includes('set_bmc_credentials'), 'Ironic logged the rotation steps');
      // The refused caller password (on the CLI's argv by the caller's choice, which is why it is refused by default) never reached a log.
      assert.ok(!logs.ironic.includes('Chosen-by-caller1') && !logs.agent.includes('Chosen-by-caller1'));
      captureLines('passthru-keystone-transcript', [...transcript, ...timings.map((t) => `# ${t}`)]);
    } catch (e) {
      const scrub = (x: string): string => x.replace(/ipmi_password[^,}]*/g, 'ipmi_password ***').replace(/"password": "[^"]*"/g, '"password": "***"');
      let log = '(no agent log)';
      try {
        log = readFileSync(agentLog, 'utf8').slice(-3000);
      } catch {
        // none
      }
      throw new Error(scrub(`${(e as Error).message}\n--- transcript:\n${transcript.join('\n').slice(-4000)}\n--- conductor:\n${err.join('').slice(-3000)}\n--- agent log tail:\n${log}\n--- ironic log tail:\n${ironic.log().slice(-6000)}`));
    } finally {
      captureLines('passthru-keystone-conductor', err.join(''));
      if (process.env.INBAND_TRANSCRIPT) console.log(transcript.join('\n'));
    }
  });
});
