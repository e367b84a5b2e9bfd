/**
 * The whole product on a real kernel (issue #5 item 4): the agent daemon
 * (`inband-agent serve`) from the release artifact, installed with its own
 * install.sh --root (artifact-root.ts), runs inside the qemu guest against the
 * guest kernel's /dev/ipmi0 (ipmi_si on a KCS interface wired to ipmi_sim),
 * and the host drives it the way Ironic
 * does — over the network, through a port qemu forwards from host loopback —
 * with IPA's API: `POST /v1/commands/?wait=true` `bmc.set_credentials`. The
 * host then logs in with the new user over RMCP+. Then the fault: ipmi_sim is
 * stopped under a running command; the agent must keep answering its API, log
 * the lost response (a timeout), and finish the command once the BMC is back.
 *
 * Forwarded connections reach the guest from 10.0.2.2, so the agent sees a
 * remote client and the pre-shared agent token is required, as on a real
 * deploy network. The token reaches the guest over the console (never echoed)
 * and lands in a tmpfs file for --agent-token-file.
 */
import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { recordSecret } from '../helpers/secrets.js';
import { freeTcpPort, startIpmiSim, type IpmiSim, type LanplusLoginResult } from '../harness/ipmi-sim.js';
import { bootGuest, chrootCommand, type GuestResult } from '../harness/qemu.js';
import { installArtifactForGuest, type InstalledArtifact } from './artifact-root.js';
import { qemuGate } from './prerequisites.js';

const { skip, image } = await qemuGate(['dist/agent/cli.js'], { artifact: true });
const TITLE = 'inband-agent daemon in the qemu guest, driven over a forwarded port with IPA\'s API (real ipmi_si → ipmi_sim)';
const GUEST_PORT = 9999;
/** The agent's debug line when a request to the stopped BMC timed out (transport or kernel/qemu completion code). */
const RETRY_LINE = /retrying IPMI request .*(timed out after \d+ ms \(native backend\)|completion code 0xc3 \(Timeout while processing command\))/;
/** Longest the BMC stays stopped waiting for that line: past the agent's 10 s per-request timeout. */
const STALL_LIMIT_MS = 30_000;
/** Under TCG the daemon takes ~15 s to load; allow for a loaded CI machine. */
const DAEMON_UP_TIMEOUT_MS = 120_000;

interface HttpResult {
  status: number;
  json: Record<string, unknown>;
  ms: number;
}

if (skip) {
  test(TITLE, { skip }, () => undefined);
} else describe(TITLE, () => {
  const userName = 'ironicbmc';
  const password = recordSecret(`Da-${randomBytes(6).toString('base64url')}`);
  const token = recordSecret(randomBytes(32).toString('base64url'));
  let sim: IpmiSim;
  let installed: InstalledArtifact;
  let guest: GuestResult;
  let hostPort: number;
  let daemonUpMs: number | undefined;
  let status: HttpResult | undefined;
  let noToken: HttpResult | undefined;
  let setCreds: HttpResult | undefined;
  let list: HttpResult | undefined;
  let login: LanplusLoginResult | undefined;
  // The fault: the BMC stopped under a running command.
  const stalledUser = 'ironicbmc2';
  const stalledPassword = recordSecret(`Ds-${randomBytes(6).toString('base64url')}`);
  let stalled: HttpResult | undefined;
  let whileStopped: HttpResult | undefined;
  let statusWhileStopped: HttpResult | undefined;
  let stalledFinal: HttpResult | undefined;
  let stalledLogin: LanplusLoginResult | undefined;
  let retryLine: string | undefined;
  let stalledMs: number | undefined;
  const watchers: Array<{ re: RegExp; resolve: (line: string | undefined) => void }> = [];
  /** Resolves with the next console line matching `re`, or undefined after `timeoutMs`. */
  const consoleLine = (re: RegExp, timeoutMs: number): Promise<string | undefined> => new Promise((resolve) => {
    const w = { re, resolve: (line: string | undefined): void => { clearTimeout(timer); watchers.splice(watchers.indexOf(w), 1); resolve(line); } };
    const timer = setTimeout(() => w.resolve(undefined), timeoutMs);
    watchers.push(w);
  });
  let loginBefore: LanplusLoginResult;
  let driveError: string | undefined;

  const http = async (method: string, path: string, body?: unknown): Promise<HttpResult> => {
    const t0 = performance.now();
    const rsp = await fetch(`http://127.0.0.1:${hostPort}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await rsp.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { unparsed: text.slice(0, 200) };
    }
    return { status: rsp.status, json, ms: Math.round(performance.now() - t0) };
  };

  /** Runs while the guest waits: the host's side of the conversation, as Ironic would hold it. */
  const drive = async (): Promise<void> => {
    const t0 = performance.now();
    for (;;) {
      try {
        status = await http('GET', '/v1/status');
        if (status.status === 200) break;
      } catch {
        // not listening yet (qemu accepts and drops the connection until the guest does)
      }
      if (performance.now() - t0 > DAEMON_UP_TIMEOUT_MS) throw new Error(`the daemon did not answer GET /v1/status within ${DAEMON_UP_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
    daemonUpMs = Math.round(performance.now() - t0);
    const command = { name: 'bmc.set_credentials', params: { username: userName, password } };
    noToken = await http('POST', '/v1/commands/?wait=true', command);
    setCreds = await http('POST', `/v1/commands/?wait=true&agent_token=${encodeURIComponent(token)}`, command);
    list = await http('GET', `/v1/commands/?agent_token=${encodeURIComponent(token)}`);
    login = await sim.lanplusLogin(userName, password);

    // Fault: the BMC stops before the next command starts. The agent must keep
    // answering its API, time the request out (and say so), and finish the
    // command once the BMC is back: its retry policy resends idempotent writes.
    const q = `agent_token=${encodeURIComponent(token)}`;
    sim.pause();
    const paused = performance.now();
    try {
      stalled = await http('POST', `/v1/commands/?wait=false&${q}`, { name: 'bmc.set_credentials', params: { username: stalledUser, password: stalledPassword } });
      // Stopped until the agent reports the lost response on its console: qemu's
      // ipmi-bmc-extern answers 0xC3 after ~4 s, else the agent's own 10 s timeout fires.
      retryLine = await consoleLine(RETRY_LINE, STALL_LIMIT_MS);
      whileStopped = await http('GET', `/v1/commands/${String(stalled.json.id)}?${q}`);
      statusWhileStopped = await http('GET', '/v1/status');
    } finally {
      sim.resume();
      stalledMs = Math.round(performance.now() - paused);
    }
    const t1 = performance.now();
    do {
      await new Promise((r) => setTimeout(r, 500));
      stalledFinal = await http('GET', `/v1/commands/${String(stalled.json.id)}?${q}`);
    } while (stalledFinal.json.command_status === 'RUNNING' && performance.now() - t1 < 120_000);
    stalledLogin = await sim.lanplusLogin(stalledUser, stalledPassword);
  };

  before(async () => {
    installed = await installArtifactForGuest();
    sim = await startIpmiSim();
    hostPort = await freeTcpPort();
    loginBefore = await sim.lanplusLogin(userName, password);
    // The installed tree is the host's root, read-only over 9p; in a real ramdisk /var/lib (the
    // journal's default) is the ramdisk's own tmpfs. Here the guest's tmpfs is /run.
    const daemon = chrootCommand([installed.launcher, 'serve', '--standalone', '--state-dir', '/run/inband-agent',
      '--listen-port', String(GUEST_PORT), '--agent-token-file', '/run/agent.token', '--log-level', 'debug']);
    const script = [
      'cd /',
      // /host/run is the guest's tmpfs: the token never touches a disk.
      'echo "@@inband:ask secret:token"',
      'read -r tok',
      '(umask 077; printf "%s\\n" "$tok" > /host/run/agent.token)',
      'tok=',
      `${daemon} < /dev/null &`,
      'pid=$!',
      'echo "@@inband:ask drive-agent"',
      'read -r ans',
      'kill -TERM $pid',
      'wait $pid',
      'rc=$?',
      'echo "@@inband:result {\\"step\\":\\"daemon-exit\\",\\"exit\\":$rc}"',
      '',
    ].join('\n');
    guest = await bootGuest({
      vmPort: sim.vmPort,
      image,
      name: 'agent-daemon',
      script,
      forward: [{ hostPort, guestPort: GUEST_PORT }],
      onLine: (line) => {
        for (const w of [...watchers]) if (w.re.test(line)) w.resolve(line);
      },
      timeoutMs: 240_000,
      onAsk: async (what) => {
        if (what === 'secret:token') return token;
        if (what === 'drive-agent') {
          try {
            await drive();
          } catch (err) {
            driveError = err instanceof Error ? err.message : String(err);
          }
          return 'done';
        }
        throw new Error(`unexpected request ${what}`);
      },
    });
  });

  after(async () => {
    await sim?.stop();
    await installed?.remove();
  });

  const ready = (): void => {
    assert.equal(guest.timedOut, false, `guest timed out; console in ${guest.logFile}`);
    assert.equal(driveError, undefined, `${driveError}; console in ${guest.logFile}`);
  };

  it('serves IPA\'s API from the guest on a forwarded port, with the native backend chosen by itself', (t) => {
    ready();
    assert.equal(status?.status, 200);
    assert.equal(typeof status?.json.version, 'string');
    assert.match(guest.log, /IPMI backend: native \(\/dev\/ipmi0\); auto: IPMI device \/dev\/ipmi0 found and the native addon loaded/);
    t.diagnostic(`daemon answered GET /v1/status ${daemonUpMs} ms after the guest started it (node loading the agent under TCG); qemu start → /dev/ipmi0 ${guest.timings.ipmiReadyMs} ms`);
  });

  it('refuses a command without the agent token from the (remote) host', () => {
    ready();
    assert.equal(noToken?.status, 401, JSON.stringify(noToken?.json));
  });

  it('runs bmc.set_credentials through the real driver; the host then logs in with the new user over lanplus', (t) => {
    ready();
    assert.equal(loginBefore.ok, false, 'the user must not work before the agent created it');
    assert.equal(setCreds?.status, 200, JSON.stringify(setCreds?.json));
    const record = setCreds!.json;
    assert.equal(record.command_status, 'SUCCEEDED', JSON.stringify(record.command_error));
    const result = record.command_result as Record<string, unknown>;
    assert.equal(result.username, userName);
    assert.equal((result.verified as Record<string, unknown>).password_test, 'passed');
    assert.equal(login?.ok, true, `lanplus login with the credentials the agent set failed: ${login?.stderr}`);
    t.diagnostic(`POST bmc.set_credentials (wait=true) answered in ${setCreds!.ms} ms over the forwarded port; ${String(result.requests)} IPMI requests through /dev/ipmi0`);
  });

  it('keeps answering while the BMC is stopped under a running command, logs the timeout, and finishes once the BMC is back', (t) => {
    ready();
    assert.equal(stalled?.status, 200, JSON.stringify(stalled?.json));
    assert.equal(whileStopped?.status, 200);
    assert.equal(whileStopped?.json.command_status, 'RUNNING', 'the command must still be running, not failed or done, while the BMC is stopped');
    assert.equal(statusWhileStopped?.status, 200);
    // The agent's debug log (on the console) reports the lost response while the BMC is stopped.
    assert.ok(retryLine, `the agent logged no timeout within ${STALL_LIMIT_MS} ms of the BMC stopping; console in ${guest.logFile}`);
    assert.equal(stalledFinal?.json.command_status, 'SUCCEEDED', JSON.stringify(stalledFinal?.json.command_error));
    assert.equal(stalledLogin?.ok, true, `lanplus login with the user set across the stall failed: ${stalledLogin?.stderr}`);
    t.diagnostic(`BMC stopped for ${stalledMs} ms; the agent logged: ${retryLine!.replace(/^.*retrying IPMI request /, 'retrying IPMI request ')}`);
    t.diagnostic(`API answered in ${whileStopped!.ms} ms (command record) and ${statusWhileStopped!.ms} ms (status) while the BMC was stopped; the command then succeeded`);
  });

  it('keeps the passwords and the token out of command records, the console and the agent log', () => {
    ready();
    const texts = [['the set_credentials record', JSON.stringify(setCreds?.json)], ['GET /v1/commands', JSON.stringify(list?.json)],
      ['the stalled command\'s record', JSON.stringify(stalledFinal?.json)], ['the guest console', guest.log]] as const;
    for (const [what, text] of texts) {
      assert.ok(!text.includes(password) && !text.includes(stalledPassword), `a password appeared in ${what}`);
      assert.ok(!text.includes(token), `the token appeared in ${what}`);
    }
  });

  it('shuts down cleanly on SIGTERM', () => {
    const exit = (guest.results as Array<{ step: string; exit: number }>).find((r) => r.step === 'daemon-exit');
    assert.ok(exit, `no daemon-exit step; console in ${guest.logFile}`);
    assert.equal(exit.exit, 0);
  });
});
