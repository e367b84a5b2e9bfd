/**
 * The failure table of a BMC credential rotation, declared once for its two
 * implementations: `conductor rotate` (conductor/rotate.ts, which records the
 * steps of {@link ROTATE_STEPS}) and the Ironic driver's `set_bmc_credentials`
 * vendor passthru (ironic-driver/inband_ironic/rotation.py, the steps of
 * {@link PASSTHRU_STEPS}). Both alternate between two BMC users and write the
 * one Ironic does not hold, so the credential in Ironic keeps working until the
 * new one is proven out-of-band.
 *
 * For each failure point the table says what Ironic holds afterwards (the
 * `previous` user or the `next` one; either way a credential that logs in),
 * the state of the new password in the store, whether the previous BMC user is
 * still enabled and whether the BMC was written. No point locks the operator
 * out. It is exported as data (service/rotation-failures.json, by
 * `npm run gen:credential-contract`); test/ironic-driver/shared-contract.test.ts
 * runs every row against `conductor rotate`'s rotate(), and
 * inband_ironic/tests/test_failure_table.py against the passthru's rotation.
 */

/** The steps `conductor rotate` records, in order (conductor/rotate.ts explains each). */
export const ROTATE_STEPS = Object.freeze([
  'check-request', 'read-node', 'seal', 'store-pending', 'manage', 'clean', 'prove', 'update-ironic',
  'ironic-power-check', 'store-current', 'retire-previous', 'delete-superseded', 'return-node',
] as const);
export type RotationStepName = (typeof ROTATE_STEPS)[number];

/** The steps the Ironic passthru records, in order (inband_ironic/rotation.py explains each). */
export const PASSTHRU_STEPS = Object.freeze([
  'store-pending', 'set-in-band', 'prove', 'update-ironic', 'store-current', 'retire-previous', 'delete-superseded',
] as const);
export type PassthruStepName = (typeof PASSTHRU_STEPS)[number];

export interface FailureExpectation {
  outcome: 'rotated' | 'failed';
  /** Which user Ironic's driver_info logs in as afterwards. */
  ironic_holds: 'previous' | 'next';
  /** The new password's entry in the store: none stored, or its state. */
  store: 'none' | 'pending' | 'failed' | 'current';
  previous_enabled: boolean;
  bmc_written: boolean;
}

export interface FailurePoint {
  id: string;
  /** The step of `conductor rotate` that fails, or null for the row without a failure. */
  rotate: RotationStepName | null;
  /** The passthru's step that fails, or null for the row without a failure. */
  passthru: PassthruStepName | null;
  why: string;
  expect: FailureExpectation;
}

export const ROTATION_FAILURES: readonly FailurePoint[] = Object.freeze([
  {
    id: 'store-pending', rotate: 'store-pending', passthru: 'store-pending',
    why: 'the store (driver_info or Barbican) refused the pending password',
    expect: { outcome: 'failed', ironic_holds: 'previous', store: 'none', previous_enabled: true, bmc_written: false },
  },
  {
    id: 'set-in-band', rotate: 'clean', passthru: 'set-in-band',
    why: 'the agent refused or failed the change (it rolls its own write back)',
    expect: { outcome: 'failed', ironic_holds: 'previous', store: 'failed', previous_enabled: true, bmc_written: false },
  },
  {
    id: 'prove', rotate: 'prove', passthru: 'prove',
    why: 'the new user does not log in out-of-band',
    expect: { outcome: 'failed', ironic_holds: 'previous', store: 'failed', previous_enabled: true, bmc_written: true },
  },
  {
    id: 'update-ironic', rotate: 'update-ironic', passthru: 'update-ironic',
    why: 'Ironic refused the driver_info update',
    expect: { outcome: 'failed', ironic_holds: 'previous', store: 'failed', previous_enabled: true, bmc_written: true },
  },
  {
    id: 'store-current', rotate: 'store-current', passthru: 'store-current',
    why: 'the store could not mark the new password current',
    expect: { outcome: 'failed', ironic_holds: 'next', store: 'pending', previous_enabled: true, bmc_written: true },
  },
  {
    id: 'retire-previous', rotate: 'retire-previous', passthru: 'retire-previous',
    why: 'the previous user does not read back disabled (after the tries a busy or silent BMC gets): the rotation fails, nothing rolled back, since Ironic holds the new, proven credential',
    expect: { outcome: 'failed', ironic_holds: 'next', store: 'current', previous_enabled: true, bmc_written: true },
  },
  {
    id: 'none', rotate: null, passthru: null,
    why: 'no failure',
    expect: { outcome: 'rotated', ironic_holds: 'next', store: 'current', previous_enabled: false, bmc_written: true },
  },
]);
