"""InbandBMCVendor with Ironic's own classes and task manager doubles."""

import datetime
import unittest
from unittest import mock

from ironic.common import exception
from ironic.common import states
from ironic.drivers import ipmi
from ironic.drivers.modules import ipmitool

from inband_ironic import hardware
from inband_ironic import sealing
from inband_ironic import stores
from inband_ironic import vendor
from inband_ironic.tests import fakes
from inband_ironic.tests import test_sealing

from cryptography.hazmat.primitives.asymmetric import ec


class HardwareTypeTestCase(unittest.TestCase):

    def test_extends_ipmi_with_one_vendor_interface(self):
        hw = hardware.InbandIPMIHardware()
        self.assertIsInstance(hw, ipmi.IPMIHardware)
        self.assertEqual([vendor.InbandBMCVendor, ipmitool.VendorPassthru] + [
            c for c in ipmi.IPMIHardware().supported_vendor_interfaces if c is not ipmitool.VendorPassthru],
            hw.supported_vendor_interfaces)
        self.assertEqual(ipmi.IPMIHardware().supported_power_interfaces, hw.supported_power_interfaces)

    def test_route_is_async_post_with_a_description(self):
        route = vendor.InbandBMCVendor().vendor_routes['set_bmc_credentials']
        self.assertTrue(route['async'])
        self.assertEqual(['POST'], route['http_methods'])
        self.assertTrue(route['require_exclusive_lock'])
        self.assertIn('Rotate the BMC credential in-band', route['description'])
        self.assertIn('send_raw', vendor.InbandBMCVendor().vendor_routes)


@mock.patch.object(ipmitool, '_constructor_checks', lambda driver: None)
class ValidateTestCase(unittest.TestCase):

    def setUp(self):
        self.iface = vendor.InbandBMCVendor()
        self.task = fakes.fake_task()
        p = mock.patch.object(vendor, 'pinned_recipient', autospec=True)
        self.pinned = p.start()
        self.addCleanup(p.stop)

    def refused(self, exc=exception.Invalid, **kwargs):
        with self.assertRaises(exc) as cm:
            self.iface.validate(self.task, method='set_bmc_credentials', http_method='POST', **kwargs)
        self.assertEqual(400, cm.exception.code)
        self.assertEqual([], self.task.node.saved, 'nothing stored')
        return str(cm.exception)

    def test_valid(self):
        self.iface.validate(self.task, method='set_bmc_credentials', http_method='POST', username='ironic')

    def test_bad_args(self):
        self.assertIn('username is required', self.refused(exception.MissingParameterValue))
        self.assertIn('username: must be 1-16 ASCII letters', self.refused(username='bad name'))
        self.assertIn('the second BMC user): must be 1-16 ASCII', self.refused(username='abcdefghijklmno'))
        self.assertIn('unknown argument(s) slot', self.refused(username='ironic', slot='1'))
        self.assertIn('privilege', self.refused(username='ironic', privilege='user'))
        self.assertIn('password_policy', self.refused(username='ironic', password_policy='weak'))
        self.assertIn('password_length', self.refused(username='ironic', password_length='x'))
        msg = self.refused(username='ironic', password='Chosen-pw-1')
        self.assertIn('use_given_password=true', msg)
        self.assertNotIn('Chosen-pw-1', msg)
        self.assertNotIn('x' * 21, self.refused(username='ironic', password='x' * 21, use_given_password='true'))

    def test_given_password_when_asked(self):
        self.iface.validate(self.task, method='set_bmc_credentials', http_method='POST', username='ironic',
                            password='Chosen-pw-1', use_given_password='true')

    def test_no_agent_names_what_to_do(self):
        self.task.node.driver_internal_info = {}
        msg = self.refused(vendor.AgentNotReachable, username='ironic')
        for words in ('no agent is reachable', 'fast track', 'manual clean', 'service step'):
            self.assertIn(words, msg)

    def test_stale_heartbeat(self):
        old = (datetime.datetime.utcnow() - datetime.timedelta(hours=2)).isoformat()
        self.task.node.set_driver_internal_info('agent_last_heartbeat', old)
        self.assertIn('fast_track_timeout', self.refused(vendor.AgentNotReachable, username='ironic'))

    def test_heartbeat_stamped_on_a_whole_second(self):
        # Ironic's isoformat() stamp has no '.%f' when the microseconds are 0; its own parser refuses it.
        now = datetime.datetime.utcnow().replace(microsecond=0)
        self.task.node.set_driver_internal_info('agent_last_heartbeat', now.isoformat())
        self.iface.validate(self.task, method='set_bmc_credentials', http_method='POST', username='ironic')
        old = (now - datetime.timedelta(hours=2)).isoformat()
        self.task.node.set_driver_internal_info('agent_last_heartbeat', old)
        self.assertIn('fast_track_timeout', self.refused(vendor.AgentNotReachable, username='ironic'))
        self.task.node.set_driver_internal_info('agent_last_heartbeat', 'not a time')
        self.assertIn('fast_track_timeout', self.refused(vendor.AgentNotReachable, username='ironic'))

    def test_wrong_state_and_maintenance(self):
        self.task.node.provision_state = states.ACTIVE
        self.assertIn('"active"', self.refused(vendor.AgentNotReachable, username='ironic'))
        self.task.node.provision_state = states.MANAGEABLE
        self.task.node.target_provision_state = states.AVAILABLE
        self.refused(vendor.AgentNotReachable, username='ironic')
        self.task.node.target_provision_state = None
        self.task.node.maintenance = True
        self.assertIn('maintenance', self.refused(username='ironic'))

    def test_no_certificate(self):
        self.task.node.driver_internal_info.pop('agent_verify_ca')
        self.assertIn('agent_verify_ca', self.refused(vendor.AgentNotReachable, username='ironic'))

    def test_other_methods_go_to_ipmitool(self):
        with mock.patch.object(ipmitool.VendorPassthru, 'validate', autospec=True) as v:
            self.iface.validate(self.task, method='send_raw', raw_bytes='0x06 0x01')
            v.assert_called_once_with(self.iface, self.task, 'send_raw', raw_bytes='0x06 0x01')


@mock.patch.object(ipmitool, '_constructor_checks', lambda driver: None)
class SetBmcCredentialsTestCase(unittest.TestCase):

    def setUp(self):
        self.key = ec.generate_private_key(ec.SECP384R1())
        recipient = sealing.recipient_from_pem(test_sealing.self_signed(self.key), 'pinned')
        p = mock.patch.object(vendor, 'pinned_recipient', autospec=True, return_value=recipient)
        p.start()
        self.addCleanup(p.stop)
        self.task = fakes.fake_task()
        self.client = mock.Mock()
        p = mock.patch.object(vendor.agent_client, 'get_client', autospec=True, return_value=self.client)
        p.start()
        self.addCleanup(p.stop)
        self.seen = {}

        def command(node, method, params, wait=False, poll=False):
            self.seen = {'method': method, 'params': params, 'wait': wait,
                         'password': test_sealing.open_sealed(self.key, params['password_sealed'])}
            return {'command_status': 'SUCCEEDED', 'command_result': {'user_id': 3, 'channels': [1]}}
        self.client._command.side_effect = command
        self.powers = []

        def power(task):
            self.powers.append(dict(task.node.driver_info))
            return states.POWER_ON
        self.task.driver.power.get_power_state.side_effect = power
        self.bmc = fakes.FakeBmc()
        p = mock.patch.object(ipmitool, '_exec_ipmitool', autospec=True, side_effect=self.bmc.exec_ipmitool)
        self.ipmitool = p.start()
        self.addCleanup(p.stop)
        self.sleeps = []
        p = mock.patch.object(ipmitool, '_parse_driver_info', autospec=True, side_effect=lambda n: dict(n.driver_info))
        p.start()
        self.addCleanup(p.stop)

    def test_rotates(self):
        vendor.InbandBMCVendor().set_bmc_credentials(self.task, http_method='POST', username='ironic')
        node = self.task.node
        rec = node.driver_internal_info['inband_bmc_rotation']
        self.assertEqual('rotated', rec['outcome'], rec)
        self.assertEqual('bmc.set_credentials', self.seen['method'])
        self.assertTrue(self.seen['wait'])
        self.assertEqual({'username', 'password_sealed', 'privilege'}, set(self.seen['params']))
        self.assertEqual('ironic', self.seen['params']['username'])
        new = self.seen['password']
        self.assertEqual(16, len(new))
        # The proof read the power state with the new credential, then driver_info kept it.
        self.assertEqual(('ironic', new), (self.powers[0]['ipmi_username'], self.powers[0]['ipmi_password']))
        self.assertEqual(('ironic', new), (node.driver_info['ipmi_username'], node.driver_info['ipmi_password']))
        self.assertFalse(any(k.startswith('inband_bmc_') for k in node.driver_info))
        # Pending was saved before the agent saw it.
        self.assertEqual(new, node.saved[0]['driver_info'][stores.PENDING_PASSWORD])
        self.assertEqual('admin', node.saved[0]['driver_info']['ipmi_username'])
        # Retired logged in as the new user, read back disabled.
        self.assertEqual('ironic', self.ipmitool.call_args[0][0]['ipmi_username'])
        self.assertEqual([2], self.bmc.disabled)
        self.assertFalse(self.bmc.users[2][1])
        self.assertEqual('user 2 (admin) disabled, reads back disabled (enable status)', rec['steps'][5]['detail'])
        self.assertEqual([], self.sleeps)
        self.assertNotIn(new, repr(rec))
        for session in self.bmc.sessions:
            self.assertNotIn(new, repr(session))
        self.task.driver.power.set_power_state.assert_not_called()

    def test_proof_fails_ironic_keeps_the_previous_user(self):
        self.task.driver.power.get_power_state.side_effect = exception.IPMIFailure(cmd='power status')
        vendor.InbandBMCVendor().set_bmc_credentials(self.task, http_method='POST', username='ironic')
        node = self.task.node
        rec = node.driver_internal_info['inband_bmc_rotation']
        self.assertEqual(('failed', 'prove'), (rec['outcome'], rec['failed_step']))
        self.assertEqual(('admin', 'Old-password-1'), (node.driver_info['ipmi_username'], node.driver_info['ipmi_password']))
        self.assertIn(stores.FAILED_PASSWORD, node.driver_info)
        self.assertIn('set_bmc_credentials failed at prove', node.last_error)
        self.assertIn('Ironic logs in as admin', node.last_error)
        self.task.driver.power.set_power_state.assert_not_called()

    def test_agent_refuses(self):
        self.client._command.side_effect = None
        self.client._command.return_value = {'command_status': 'FAILED', 'command_error': {'message': 'no IPMI device'}}
        vendor.InbandBMCVendor().set_bmc_credentials(self.task, http_method='POST', username='ironic')
        rec = self.task.node.driver_internal_info['inband_bmc_rotation']
        self.assertEqual('set-in-band', rec['failed_step'])
        self.assertIn('no IPMI device', rec['error'])
        self.assertEqual('admin', self.task.node.driver_info['ipmi_username'])
        self.task.driver.power.get_power_state.assert_not_called()

    def test_alternates_to_the_second_user(self):
        self.task.node.driver_info['ipmi_username'] = 'ironic'
        self.bmc.users = {2: ['admin', True, 'ADMINISTRATOR'], 3: ['ironic', True, 'ADMINISTRATOR'],
                          4: ['ironic_b', True, 'ADMINISTRATOR']}
        self.bmc.session_user = 4
        self.vendor().set_bmc_credentials(self.task, http_method='POST', username='ironic')
        self.assertEqual('ironic_b', self.task.node.driver_info['ipmi_username'])
        self.assertEqual([3], self.bmc.disabled)

    def vendor(self):
        return vendor.InbandBMCVendor(sleep=self.sleeps.append)

    def rotate(self):
        self.vendor().set_bmc_credentials(self.task, http_method='POST', username='ironic')
        return self.task.node.driver_internal_info['inband_bmc_rotation']

    def assert_failed_at_retire(self, rec):
        node = self.task.node
        self.assertEqual(('failed', 'retire-previous'), (rec['outcome'], rec['failed_step']), rec)
        # Nothing rolled back: Ironic keeps the new, proven credential; the store keeps it current.
        self.assertEqual('ironic', node.driver_info['ipmi_username'])
        self.assertEqual(self.seen['password'], node.driver_info['ipmi_password'])
        self.assertEqual({'username': 'ironic', 'note': "proven with the node's power interface; in Ironic driver_info"},
                         rec['current'])
        self.assertEqual('current', rec['next']['secret_state'])
        self.assertEqual([], rec['rolled_back'])
        self.assertIn('previous BMC user admin is still enabled', rec['error'])
        self.assertIn('Ironic logs in as ironic, proven and current', rec['error'])
        self.assertIn('set_bmc_credentials failed at retire-previous: previous BMC user admin', node.last_error)
        self.assertNotIn(self.seen['password'], repr(rec) + node.last_error)

    def test_retirement_read_back_on_a_bmc_without_enable_status(self):
        # ipmi_sim: §22.27 enable status 00b, IPMI messaging is the enable flag.
        self.bmc.reports_status = False
        rec = self.rotate()
        self.assertEqual('rotated', rec['outcome'], rec)
        self.assertEqual('user 2 (admin) disabled, reads back disabled (IPMI messaging off)', rec['steps'][5]['detail'])

    def test_still_enabled_after_the_disable_fails_the_rotation(self):
        self.bmc.keeps_enabled = True
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn('after 3 tries (user 2 (admin) disabled, but user 2 reads back enabled (enable status))',
                      rec['error'])
        self.assertEqual([2.0, 4.0], self.sleeps)
        self.assertEqual([2, 2, 2], self.bmc.disabled)

    def test_a_busy_bmc_is_tried_again(self):
        self.bmc.busy = 1
        rec = self.rotate()
        self.assertEqual('rotated', rec['outcome'], rec)
        self.assertEqual([2.0], self.sleeps)
        self.assertTrue(rec['steps'][5]['detail'].endswith('(try 2)'), rec['steps'][5])
        self.assertFalse(self.bmc.users[2][1])
        self.assertIsNone(self.task.node.last_error)

    def test_silent_every_time_fails_after_three_tries(self):
        self.bmc.busy = 5
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn('after 3 tries', rec['error'])
        self.assertIn('Unable to establish IPMI v2 / RMCP+ session', rec['error'])
        self.assertEqual([2.0, 4.0], self.sleeps)

    def test_no_such_user_is_not_asked_again(self):
        self.bmc.users = {3: ['ironic', True, 'ADMINISTRATOR'], 4: ['root', True, 'ADMINISTRATOR']}
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn('after 1 try (no user named admin)', rec['error'])
        self.assertEqual([], self.sleeps)
        self.assertEqual([], self.bmc.disabled)

    def test_two_users_of_that_name_are_not_asked_again(self):
        self.bmc.users[5] = ['admin', True, 'OPERATOR']
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn('(2 users are named admin)', rec['error'])
        self.assertEqual(([], []), (self.sleeps, self.bmc.disabled))

    def test_the_last_enabled_administrator_is_never_disabled(self):
        # The new user came out an operator: admin is the only administrator left.
        self.bmc.users[3][2] = 'OPERATOR'
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn('user 2 ("admin") is the last enabled administrator', rec['error'])
        self.assertEqual(([], []), (self.sleeps, self.bmc.disabled))
        self.assertTrue(self.bmc.users[2][1])

    def test_the_session_user_is_never_disabled(self):
        # The BMC says this session is user 2, the one named as the previous user.
        self.bmc.session_user = 2
        rec = self.rotate()
        self.assert_failed_at_retire(rec)
        self.assertIn("admin is user 2, the user this session (Ironic's credential) is logged in as", rec['error'])
        self.assertEqual(([], []), (self.sleeps, self.bmc.disabled))
