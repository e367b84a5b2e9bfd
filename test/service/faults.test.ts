/**
 * Every fault the simulated BMC can script, at every step of a change, on
 * every vendor profile. After each run the user table is either fully applied
 * and verified, or exactly as before (after a reported roll-back failure: once
 * the next start's recovery has run). Never half.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CC } from '../../ipmi-kcs/completion-codes.js';
import { createSimulatedTransport, listProfiles, type FaultAction, type FaultMatch } from '../../ipmi-kcs/simulated/index.js';
import { AppCmd, PasswordOp } from '../../ipmi-kcs/spec.js';
import { CredentialService, ServiceError, type SetCredentialsResult } from '../../service/index.js';
import { assertApplied, assertNoLeak, CaptureLogger, table, testSecret } from './service-helpers.js';

// Satisfies the password-policy profile too (≥13, four classes, no adjacent repeats).
const PASSWORD = 'F4ult-Test_pw97';
// Generous against a loaded 2-core machine; the faults never depend on it being short.
const TIMEOUT_MS = 150;

interface Target { name: string; match: FaultMatch; nth?: (lanChannels: number) => number }
const TARGETS: Target[] = [
  { name: 'Get User Name (discovery)', match: { cmd: AppCmd.GET_USER_NAME }, nth: () => 3 },
  { name: 'Set User Name', match: { cmd: AppCmd.SET_USER_NAME } },
  { name: 'Set User Password', match: { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.SET_PASSWORD } },
  { name: 'enable user', match: { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.ENABLE_USER } },
  { name: 'Set User Access (first channel)', match: { cmd: AppCmd.SET_USER_ACCESS } },
  { name: 'Set User Access (last channel)', match: { cmd: AppCmd.SET_USER_ACCESS }, nth: (l) => l },
  { name: 'Test Password (verify)', match: { cmd: AppCmd.SET_USER_PASSWORD, passwordOp: PasswordOp.TEST_PASSWORD } },
  // limits (user 1) + snapshot (L) + read-back (first channel)
  { name: 'Get User Access (read-back)', match: { cmd: AppCmd.GET_USER_ACCESS }, nth: (l) => 2 + l },
];

/** `only`: targets to try it on (the slow ones, which wait for timeouts, on a few steps). */
interface Fault { name: string; action: FaultAction; times?: number; only?: string[] }
const FAULTS: Fault[] = [
  { name: 'busy twice', action: { kind: 'busy' }, times: 2 },
  { name: 'busy for good', action: { kind: 'busy' }, times: 1000 },
  { name: 'completion code 0xCC', action: { kind: 'completion-code', code: CC.INVALID_DATA_FIELD } },
  { name: 'completion code 0xD5 for good', action: { kind: 'completion-code', code: CC.NOT_SUPPORTED_IN_PRESENT_STATE }, times: 1000 },
  { name: 'timeout, executed', action: { kind: 'no-response', executed: true } },
  { name: 'timeout, lost', action: { kind: 'no-response', executed: false } },
  { name: 'timeout for good', action: { kind: 'no-response', executed: false }, times: 1000, only: ['Set User Password', 'Set User Access (last channel)'] },
  { name: 'late response', action: { kind: 'late-response', delayMs: TIMEOUT_MS * 2 } },
  { name: 'truncated response', action: { kind: 'cut-response', length: 1 } },
  { name: 'short response', action: { kind: 'short-response', length: 2 } },
  { name: 'garbled (0xFF)', action: { kind: 'garbled' } },
  { name: 'reset mid-sequence, executed', action: { kind: 'reset', executed: true } },
  { name: 'reset mid-sequence, lost', action: { kind: 'reset', executed: false, window: 3, windowResponse: 'busy' } },
  { name: 'reset, silent window', action: { kind: 'reset', executed: false, window: 2, windowResponse: 'no-response' } },
  { name: 'reset to factory', action: { kind: 'reset', revertTo: 'factory' } },
];

const slow = (f: Fault): boolean => ['no-response', 'late-response', 'reset'].includes(f.action.kind);

const outcomes = new Map<string, number>();
const notes: string[] = [];

// Profiles run concurrently: most of the time here is timeouts waiting, not CPU.
test('every fault at every step, on every profile, ends fully applied or exactly as before', { concurrency: true }, async (tt) => {
const runs: Promise<void>[] = [];
for (const profile of listProfiles()) {
  runs.push(tt.test(profile, async () => {
    for (const target of TARGETS) {
      for (const fault of FAULTS) {
        if (fault.only && !fault.only.includes(target.name)) continue;
        // Faults that wait for a timeout run on two targets per profile, rotating, so every
        // (fault, target) pair still runs on two profiles and every (profile, fault) pair runs.
        const ti = TARGETS.indexOf(target);
        const pi = listProfiles().indexOf(profile);
        if (slow(fault) && !fault.only && ti !== (pi * 2) % TARGETS.length && ti !== (pi * 2 + 1) % TARGETS.length) continue;
        const label = `${profile} / ${target.name} / ${fault.name}`;
        const t = createSimulatedTransport({ profile });
        const dir = mkdtempSync(join(tmpdir(), 'svc-fault-'));
        const log = new CaptureLogger(`service-faults-${profile}`);
        const opts = { transport: t, stateDir: dir, logger: log, timeoutMs: TIMEOUT_MS, retry: { attempts: 5, initialDelayMs: 1, maxDelayMs: 4 } };
        try {
          const before = table(t.bmc);
          const L = t.bmc.lanChannels().length;
          t.bmc.inject({ match: { netFn: 0x06, ...target.match }, nth: target.nth?.(L) ?? 1, times: fault.times ?? 1, action: fault.action });
          let result: SetCredentialsResult | undefined;
          let error: unknown;
          try {
            result = await new CredentialService(opts).setCredentials({ username: 'svc_agent', password: testSecret(PASSWORD) });
          } catch (err) {
            error = err;
          }
          t.bmc.clearFaults();
          let outcome: string;
          if (result) {
            outcome = 'applied';
            assertApplied(t.bmc, result.userId, 'svc_agent', PASSWORD);
            assert.equal(result.verified.name && result.verified.enabled && Object.values(result.verified.access).every(Boolean), true, label);
          } else {
            assert.ok(error instanceof ServiceError, `${label}: ${String(error)}`);
            outcome = error.code;
            assert.ok(['BMC_ERROR', 'ROLLED_BACK', 'ROLLBACK_FAILED'].includes(error.code), `${label}: ${error.code} ${error.message}`);
            if (error.code === 'ROLLBACK_FAILED') {
              // The journal was kept; the next start rolls the change back before anything else.
              assert.deepEqual(readdirSync(dir), ['credential-change.journal.json'], label);
              const report = await new CredentialService(opts).recover();
              assert.equal(report?.outcome, 'rolled-back', `${label}: ${JSON.stringify(report)}`);
              outcome += '→recovered';
            }
            const after = table(t.bmc);
            if (fault.action.kind === 'reset' && fault.action.revertTo === 'factory') {
              assert.deepEqual(after.slots, before.slots, label);
            } else {
              assert.deepEqual(after.slots, before.slots, `${label}: ${error.message}`);
              assert.deepEqual(after.channelAccess, before.channelAccess, label);
            }
            // A factory reset re-salts the stored hashes; the slots compare above.
            if (!(fault.action.kind === 'reset' && fault.action.revertTo === 'factory')) for (const id of Object.keys(before.hashes).map(Number)) {
              // A previously empty slot may keep the new password bytes; it is nameless and disabled.
              if (before.slots[id]?.name !== '') assert.equal(after.hashes[id], before.hashes[id], `${label}: user ${id} password`);
            }
          }
          assert.deepEqual(readdirSync(dir), [], `${label}: journal removed`);
          assertNoLeak(PASSWORD, log.lines, error ?? '', result ?? '');
          if (outcome !== 'applied' && !/for good|0xCC|factory/.test(fault.name)) notes.push(`${label} → ${outcome}: ${error instanceof Error ? error.message : ''}`);
          outcomes.set(`${target.name} / ${fault.name} → ${outcome}`, (outcomes.get(`${target.name} / ${fault.name} → ${outcome}`) ?? 0) + 1);
        } finally {
          await t.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  }));
}
await Promise.all(runs);
});

test('fault outcomes summary', () => {
  for (const n of notes) console.log(`# transient fault not absorbed: ${n}`);
  for (const [k, n] of [...outcomes].sort()) console.log(`# ${k}: ${n} profile(s)`);
  assert.ok(outcomes.size > 0);
});
