/**
 * `conductor rotate --all` on a fleet: 10 ipmi_sim BMCs, the real Ironic 21.4
 * with 10 active `ipmi` nodes (power interface ipmitool to those BMCs), the
 * file store, the rotator run as its own process; the fleet rotated twice with
 * faults (test/harness/fleet-scenario.ts): a BMC stopped (SIGSTOP) mid-change,
 * a BMC stopped as the previous user is retired, a wrong current password, Ironic refusing a PATCH, a node reserved by
 * another conductor, and the rotator killed (SIGKILL) mid-run and started
 * again. One more node takes the in-band path: `manageable`, Ironic and its
 * BMC on a password the rotator does not know, rotated through Ironic's
 * manual clean with this repo's agent (booted by the BMC's power-on, setting
 * the user through the vm-codec backend). Asserts outcomes only; the figures
 * are bench/fleet.ts's.
 *
 * Needs scripts/install-ironic.sh and a build (dist/). Gated by INBAND_TEST_IRONIC=1.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FileSecretStore } from '../../conductor/file-store.js';
import type { RotationRecord } from '../../conductor/rotate.js';
import { FleetLab, IN_BAND_NODE, INITIAL_USER } from '../harness/fleet-lab.js';
import { faultPlan, runScenario, type ScenarioReport } from '../harness/fleet-scenario.js';
import { ipmiSimAvailability } from '../harness/ipmi-sim.js';
import { captureLines, recordSecret } from '../helpers/secrets.js';

const N = 10;
const enabled = process.env.INBAND_TEST_IRONIC === '1' && ipmiSimAvailability().available;
const skip = enabled ? false : 'real-Ironic fleet test: set INBAND_TEST_IRONIC=1 (after scripts/setup.sh --test and npm run build) to run it';

describe('conductor rotate --all: a fleet on the real Ironic, rotated twice with faults', { skip, timeout: 600_000 }, () => {
  let lab: FleetLab;
  let report: ScenarioReport;
  const plan = faultPlan(N);
  const wrong = [...plan].filter(([, k]) => k === 'wrong').map(([i]) => i);

  before(async () => {
    lab = await FleetLab.start({ n: N, wrongPassword: wrong, inBandNode: true });
    report = await runScenario(lab, {
      n: N, concurrency: 4, bmcIntervalS: 0.5, stopForMs: 15_000,
      onRun: (round, r) => captureLines(`fleet-rotator-round${round}`, [r.stdout, r.stderr]),
    });
  });

  after(async () => {
    if (!lab) return;
    // Every password the store generated, whether or not a check used it, goes to the leak check.
    if (existsSync(lab.storePath)) {
      const store = new FileSecretStore({ path: lab.storePath });
      for (const n of lab.nodes) {
        for (const e of await store.history(n.uuid)) {
          const s = await store.getSecret(n.uuid, e.id).catch(() => undefined);
          if (s) {
            recordSecret(s.reveal());
            s.dispose();
          }
        }
      }
    }
    await lab.stop();
  });

  const kindOf = (name: string): string | undefined => report.faults[name];

  it('was killed mid-run in round 1 and the restarted run resumed it', () => {
    const r1 = report.rounds[0]!;
    assert.equal(r1.runs[0]!.signal, 'SIGKILL');
    assert.equal(r1.runs[1]!.resumed, true);
    assert.equal(report.rounds[1]!.runs[0]!.resumed, false, 'round 2 is a new run');
  });

  it('leaves every node with a credential in Ironic that logs in, and Ironic\'s own power call working, after each round (0 lock-outs)', () => {
    for (const r of report.rounds) {
      for (const c of r.checks) {
        assert.equal(c.ironicLogsIn, true, `round ${r.round} ${c.node}: Ironic's ${c.ironicUser} (${c.source}) does not log in`);
        assert.equal(c.ironicPower, null, `round ${r.round} ${c.node}: ${c.ironicPower}`);
        assert.ok(c.pendingEntries <= 1, `round ${r.round} ${c.node}: ${c.pendingEntries} pending entries`);
        assert.equal(c.provisionState, c.provisionBefore, `round ${r.round} ${c.node}: left ${c.provisionState}, was ${c.provisionBefore}`);
        assert.equal(c.maintenance, false, `round ${r.round} ${c.node}: left in maintenance`);
      }
    }
  });

  it('rotates every node whose credential logs in; the new user logs in and the previous one does not', () => {
    for (const r of report.rounds) {
      for (const c of r.checks) {
        if (c.fault === 'wrong' || (r.round === 1 && (c.fault === 'patch' || c.fault === 'stop' || c.fault === 'retire'))) continue;
        assert.notEqual(c.previousLogsIn, null, `round ${r.round} ${c.node}: not rotated (Ironic still ${c.ironicUser})`);
        assert.equal(c.previousLogsIn, false, `round ${r.round} ${c.node}: the previous user still logs in`);
      }
    }
    // Round 2 rotates everything but the node whose password the rotator does not know.
    const r2 = report.rounds[1]!;
    for (const c of r2.checks) if (c.fault !== 'wrong') assert.notEqual(c.previousLogsIn, null, `${c.node} not rotated in round 2`);
  });

  it('reports a node rotated only when the BMC agrees: Ironic\'s user logs in and the previous user does not', () => {
    for (const r of report.rounds) {
      for (const res of r.results) {
        if (res.outcome !== 'rotated' && res.outcome !== 'skipped') continue;
        const c = r.checks.find((x) => x.node === res.node)!;
        assert.equal(c.ironicLogsIn, true, `round ${r.round} ${c.node}: reported ${res.outcome} (${res.detail}), but Ironic's ${c.ironicUser} does not log in`);
        assert.notEqual(c.previousLogsIn, null, `round ${r.round} ${c.node}: reported ${res.outcome} (${res.detail}), but Ironic still holds ${c.ironicUser}`);
        assert.equal(c.previousLogsIn, false, `round ${r.round} ${c.node}: reported ${res.outcome} (${res.detail}), but the previous user still logs in`);
      }
    }
  });

  it('a BMC stopped as the previous user is retired: not reported rotated before the previous user reads back disabled; finished by the next run at the latest', () => {
    const name = Object.keys(report.faults).find((k) => kindOf(k) === 'retire')!;
    assert.ok(report.rounds[0]!.stoppedAt[name] !== undefined, 'the BMC was stopped as the retirement began');
    const res1 = report.rounds[0]!.results.find((x) => x.node === name)!;
    const c1 = report.rounds[0]!.checks.find((x) => x.node === name)!;
    assert.equal(c1.ironicLogsIn, true);
    if (res1.outcome === 'rotated' || res1.outcome === 'skipped') assert.equal(c1.previousLogsIn, false, res1.detail);
    else {
      assert.equal(res1.outcome, 'failed', res1.detail);
      assert.equal(res1.resumable, true);
      assert.match(res1.detail, /retire-previous/);
    }
    const c2 = report.rounds[1]!.checks.find((x) => x.node === name)!;
    assert.notEqual(c2.previousLogsIn, null);
    assert.equal(c2.previousLogsIn, false);
  });

  it('a node reserved by another conductor is retried later, not fought over', () => {
    const locked = report.rounds[0]!.checks.find((c) => c.fault === 'locked')!;
    assert.ok(lab.lockedAnswers >= 3);
    assert.notEqual(locked.ironicUser, INITIAL_USER, 'rotated once the lock was gone');
  });

  it('a refused PATCH is rolled back (Ironic keeps its user, the new one is disabled again) and finished by the next run', () => {
    const r1 = report.rounds[0]!;
    const name = Object.keys(report.faults).find((k) => kindOf(k) === 'patch')!;
    const res = r1.results.find((x) => x.node === name)!;
    assert.equal(res.outcome, 'failed');
    assert.equal(res.resumable, false);
    assert.match(res.detail, /update-ironic/);
    assert.ok(lab.refusedPatches >= 1);
    assert.equal(r1.checks.find((c) => c.node === name)!.ironicUser, INITIAL_USER);
    assert.notEqual(report.rounds[1]!.checks.find((c) => c.node === name)!.previousLogsIn, null);
  });

  it('a wrong current password on an active node: needs attention, nothing changed, one login tried per run', () => {
    for (const r of report.rounds) {
      const c = r.checks.find((x) => x.fault === 'wrong')!;
      const res = r.results.find((x) => x.node === c.node)!;
      assert.equal(res.outcome, 'needs-attention');
      assert.match(res.detail, /does not log in.*cannot be cleaned/);
      assert.equal(res.ipmiSessions, 1);
      assert.equal(c.ironicUser, INITIAL_USER);
    }
  });

  it('a BMC stopped mid-change ends finished, with the password pending from the interrupted change (never a second one)', () => {
    const name = Object.keys(report.faults).find((k) => kindOf(k) === 'stop')!;
    assert.ok(report.rounds[0]!.stoppedAt[name] !== undefined, 'the BMC was stopped while its change was under way');
    const after2 = report.rounds[1]!.checks.find((c) => c.node === name)!;
    assert.notEqual(after2.ironicUser, INITIAL_USER);
    assert.equal(after2.previousLogsIn, false);
    const pendingAfter1 = report.rounds[0]!.checks.find((c) => c.node === name)!.pendingEntries;
    if (pendingAfter1) assert.ok(report.resumedSamePassword.some((s) => s.startsWith(`${name}:`)), 'the entry pending after round 1 became current');
  });

  it('a manageable node whose password the rotator does not know: rotated in-band through Ironic\'s manual clean and the real agent; the new user logs in, the previous one does not', () => {
    const r1 = report.rounds[0]!;
    const res = r1.results.find((x) => x.node === IN_BAND_NODE)!;
    assert.equal(res.path, 'in-band', res.detail);
    assert.equal(res.outcome, 'rotated', res.detail);
    assert.match(res.detail, /does not log in/, 'chosen because the credential Ironic holds did not log in');
    assert.equal(res.resumable, false);
    const c = r1.checks.find((x) => x.node === IN_BAND_NODE)!;
    assert.equal(c.provisionBefore, 'manageable');
    assert.equal(c.ironicUser, 'ironic');
    assert.equal(c.source, 'store current');
    assert.equal(c.ironicLogsIn, true, 'the new user logs in over lanplus');
    assert.equal(c.previousLogsIn, false, `the previous user ${INITIAL_USER} no longer logs in`);
    assert.equal(c.ironicPower, null, 'Ironic\'s own ipmitool power call works with the new credential');
    assert.equal(c.pendingEntries, 0);
    // Its record: the clean ran the agent's step, and every step after it held.
    const kept = r1.records.find((x) => x.node === IN_BAND_NODE && x.outcome === 'rotated')!;
    assert.ok(kept, 'the rotation record is kept');
    const rec = kept.record as RotationRecord;
    assert.equal(rec.outcome, 'rotated');
    assert.equal(rec.initial.provisionState, 'manageable');
    assert.equal(rec.initial.username, INITIAL_USER);
    assert.equal(rec.next.username, 'ironic');
    assert.equal(rec.next.secretState, 'current');
    const status = Object.fromEntries(rec.steps.map((s) => [s.step, s.status]));
    for (const step of ['read-node', 'store-pending', 'clean', 'prove', 'update-ironic', 'ironic-power-check', 'store-current', 'retire-previous']) {
      assert.equal(status[step], 'ok', `step ${step}: ${rec.steps.find((s) => s.step === step)?.detail ?? 'not run'}`);
    }
    assert.ok(rec.applied.includes('BMC user ironic set in-band by the agent'));
    assert.equal(rec.stepArgs?.password, 'plain');
    assert.ok(rec.warnings.every((w) => w.startsWith('PLAIN PASSWORD IN STEP ARGS')), rec.warnings.join('; '));
    // The agent the clean's power-on booted ran the step and set the user through the BMC's system interface.
    const agentLog = readFileSync(lab.nodes.find((n) => n.name === IN_BAND_NODE)!.inBand!.agentLog, 'utf8');
    assert.match(agentLog, /command clean\.execute_clean_step started \(step deploy\.set_bmc_credentials\)/);
    assert.match(agentLog, /"BMC user changed and verified"[^\n]*"username":"ironic"/);
    assert.match(agentLog, /command clean\.execute_clean_step succeeded/);
  });

  it('the in-band node, its password now in the store, is rotated out-of-band by round 2 (no second clean)', () => {
    const r2 = report.rounds[1]!;
    const res = r2.results.find((x) => x.node === IN_BAND_NODE)!;
    assert.equal(res.path, 'out-of-band', res.detail);
    assert.equal(res.outcome, 'rotated', res.detail);
    const c = r2.checks.find((x) => x.node === IN_BAND_NODE)!;
    assert.equal(c.ironicUser, 'ironic_b');
    assert.equal(c.ironicLogsIn, true);
    assert.equal(c.previousLogsIn, false);
    assert.equal(c.ironicPower, null);
    assert.equal(c.provisionState, 'manageable');
  });

  it('the exit code says not every node was rotated', () => {
    for (const r of report.rounds) assert.equal(r.runs[r.runs.length - 1]!.code, 1);
  });
});
