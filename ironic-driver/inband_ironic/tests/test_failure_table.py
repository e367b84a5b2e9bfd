"""The rows of data/failure_table.json against the passthru's rotation (the
TypeScript path runs the same rows in test/conductor-side/rotation-failure-table.test.ts)."""

import unittest

from inband_ironic import shared_data
from inband_ironic import rotation
from inband_ironic.tests import fakes

TABLE = shared_data.load('failure_table')


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

    def test_the_table_names_the_rotate_steps(self):
        # Every row maps to a step conductor rotate records (conductor/rotate.ts RotationStepName).
        rotate_steps = {'read-node', 'seal', 'store-pending', 'manage', 'clean', 'prove', 'update-ironic',
                        'ironic-power-check', 'store-current', 'retire-previous', 'delete-superseded', 'return-node'}
        for row in TABLE['points']:
            if row['rotate'] is not None:
                self.assertIn(row['rotate'], rotate_steps)
