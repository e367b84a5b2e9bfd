/**
 * Every process the product starts with a secret at hand, recorded completely:
 * the two places that spawn programs holding a BMC password (the ipmitool
 * shell transport and the conductor side's lanplus prover) run under
 * `strace -f --seccomp-bpf -e trace=execve`, which logs the argument list of
 * every exec however short-lived the process. The suite-wide check in
 * test/leak samples /proc/*\/cmdline every 20 ms and can miss a process that
 * lives less than that; this one cannot.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipmiSimAvailability, startIpmiSim, type IpmiSim } from '../harness/ipmi-sim.js';
import { recordSecret } from '../helpers/secrets.js';

const root = new URL('../../..', import.meta.url).pathname;
const avail = ipmiSimAvailability();
const strace = spawnSync('strace', ['-V'], { encoding: 'utf8' });
const skip = !avail.available ? avail.reason : strace.status !== 0 ? 'strace is not installed (scripts/setup.sh --test installs it)' : false;

// Both arrive on the driver's stdin, never in its own argv.
const ADMIN_PW = recordSecret('execAdmin-7Qp2');
const NEW_PW = recordSecret('execNew-Zr81xK');

const DRIVER = `
import { readFileSync } from 'node:fs';
const dist = ${JSON.stringify(join(root, 'dist'))};
const { Secret } = await import(dist + '/service/secret.js');
const { IpmitoolProver } = await import(dist + '/conductor/bmc-proof.js');
const { openIpmitoolTransport } = await import(dist + '/ipmi-kcs/ipmitool-pty.js');
const { host, port, admin, fresh } = JSON.parse(readFileSync(0, 'utf8'));
const bmc = { host, port, cipherSuite: '3' };
const prover = new IpmitoolProver({ attempts: 1 });
const out = {};
out.adminProof = (await prover.prove(bmc, { username: 'admin', password: Secret.fromString(admin) })).ok;
// Set User Password (IPMI v2.0 §22.30) for user 3 through the shell transport: the
// password bytes are typed into ipmitool's shell, never given as arguments.
const t = await openIpmitoolTransport({ args: ['-I', 'lanplus', '-C', '3', '-H', host, '-p', String(port), '-U', 'admin', '-E'], env: { IPMI_PASSWORD: admin } });
const bytes = [...Buffer.from(fresh, 'utf8')];
const r = await t.send({ netFn: 0x06, cmd: 0x47, data: [3, 0x02, ...bytes, ...new Array(16 - bytes.length).fill(0)] });
out.setPassword = r.completionCode;
await t.close();
out.newProof = (await prover.prove(bmc, { username: 'ops', password: Secret.fromString(fresh) })).ok;
process.stdout.write(JSON.stringify(out));
`;

describe('no secret in the argument list of any exec, recorded by strace', { skip }, () => {
  let sim: IpmiSim;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inband-exec-argv-'));
    sim = await startIpmiSim({ users: [
      { id: 2, name: 'admin', password: ADMIN_PW, privilege: 'admin' },
      { id: 3, name: 'ops', password: 'opsInit-1', privilege: 'operator' },
    ] });
  });
  after(async () => {
    await sim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the ipmitool shell transport and the lanplus prover keep passwords out of every argv', async () => {
    writeFileSync(join(dir, 'driver.mjs'), DRIVER);
    const trace = join(dir, 'execve.trace');
    const child = spawn('strace', ['-f', '--seccomp-bpf', '-qq', '-e', 'trace=execve', '-s', '65535', '-o', trace, process.execPath, join(dir, 'driver.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(JSON.stringify({ host: sim.host, port: sim.lanPort, admin: ADMIN_PW, fresh: NEW_PW }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr.replaceAll(ADMIN_PW, '***').replaceAll(NEW_PW, '***'));
    const result = JSON.parse(stdout) as { adminProof: boolean; setPassword: number; newProof: boolean };
    // The paths really ran: logins worked and the new password reached the BMC.
    assert.deepEqual(result, { adminProof: true, setPassword: 0, newProof: true });
    const text = readFileSync(trace, 'utf8');
    const execs = text.split('\n').filter((l) => /execve\("/.test(l));
    const ipmitoolExecs = execs.filter((l) => l.includes('ipmitool'));
    // Two proofs (mc info) and one shell: three ipmitool processes at least.
    assert.ok(ipmitoolExecs.length >= 3, `expected the ipmitool execs in the trace, saw ${ipmitoolExecs.length} of ${execs.length}`);
    for (const secret of [ADMIN_PW, NEW_PW]) {
      assert.ok(!text.includes(secret), 'a password appears in an execve argument list');
      // ipmitool raw takes hex: the password must not appear as hex bytes either.
      const hex = [...Buffer.from(secret)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
      assert.ok(!text.includes(hex), 'a password appears as hex bytes in an execve argument list');
    }
  });
});
