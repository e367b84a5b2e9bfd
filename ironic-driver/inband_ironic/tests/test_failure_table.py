"""The rows of the shared failure table (service/rotation-failures.json, from
service/rotation-failures.ts) against the passthru's rotation; the TypeScript
path runs the same rows in test/ironic-driver/shared-contract.test.ts."""

import unittest

from inband_ironic import shared_data
from inband_ironic import rotation
from inband_ironic.tests import fakes

TABLE = shared_data.load('rotation-failures')


class FailureTableTestCase(unittest.TestCase):

    def test_every_row(self):
        for row in TABLE['points']:
            step = row['passthru']
            with self.subTest(point=row['id']):
                store = fakes.FakeStore(fail={'store-pending': 'put_pending', 'store-current': 'mark_current'}.get(step))
                ports = fakes.FakePorts(fail=step)
                rec = rotation.rotate(fakes.UUID, 'admin', 'ironic', 'New-password-1', store, ports)
                want = row['expect']
                self.assertEqual(want['outcome'], rec['outcome'], rec)
                if want['outcome'] == 'failed':
                    self.assertEqual(step, rec['failed_step'])
                holds = 'ironic' if want['ironic_holds'] == 'next' else 'admin'
                self.assertEqual(holds, ports.ironic_user)
                self.assertEqual(holds, rec['current']['username'])
                self.assertEqual(want['store'], store.state())
                self.assertEqual(want['previous_enabled'], ports.previous_enabled)
                self.assertEqual(want['bmc_written'], ports.bmc_written)
                self.assertNotIn('New-password-1', repr(rec))

    def test_the_rotation_records_the_declared_steps_in_order(self):
        ports = fakes.FakePorts(fail=None)
        rec = rotation.rotate(fakes.UUID, 'admin', 'ironic', 'New-password-1', fakes.FakeStore(), ports)
        self.assertEqual(TABLE['passthruSteps'], [s['step'] for s in rec['steps']])
        for row in TABLE['points']:
            if row['passthru'] is not None:
                self.assertIn(row['passthru'], TABLE['passthruSteps'])
                self.assertIn(row['rotate'], TABLE['rotateSteps'])
