"""Doubles in Ironic's test style: a node object and a task manager double
(mock.Mock with the TaskManager interface), and fake rotation ports."""

import copy
import datetime
from unittest import mock

from ironic.common import states
from ironic.conductor import task_manager

UUID = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'


class FakeNode:
    """The Node fields the driver reads and writes; save() records snapshots."""

    def __init__(self, **kw):
        self.uuid = UUID
        self.provision_state = states.MANAGEABLE
        self.target_provision_state = None
        self.maintenance = False
        self.last_error = None
        self.power_state = states.POWER_ON
        self.driver_info = {'ipmi_address': '192.0.2.10', 'ipmi_username': 'admin',
                            'ipmi_password': 'Old-password-1'}
        self.driver_internal_info = {
            'agent_url': 'https://192.0.2.20:9999',
            'agent_last_heartbeat': datetime.datetime.utcnow().isoformat(),
            'agent_verify_ca': '/var/lib/ironic/certificates/%s.crt' % UUID,
        }
        self.saved = []
        for k, v in kw.items():
            setattr(self, k, v)

    def set_driver_internal_info(self, key, value):
        info = dict(self.driver_internal_info)
        info[key] = value
        self.driver_internal_info = info

    def save(self):
        self.saved.append(copy.deepcopy({'driver_info': self.driver_info,
                                         'driver_internal_info': self.driver_internal_info,
                                         'last_error': self.last_error}))


def fake_task(node=None, shared=False):
    task = mock.Mock(spec=task_manager.TaskManager)
    task.node = node or FakeNode()
    task.shared = shared
    task.context = mock.Mock()
    task.driver = mock.Mock()
    return task


class FakeStore:
    kind = 'fake'

    def __init__(self, fail=None):
        self.fail = fail
        self.entries = {}

    def _maybe(self, what):
        if self.fail == what:
            raise RuntimeError('store down (%s)' % what)

    def put_pending(self, username, password):
        self._maybe('put_pending')
        self.entries['e1'] = 'pending'
        return 'e1'

    def mark_current(self, entry):
        self._maybe('mark_current')
        self.entries[entry] = 'current'

    def mark_failed(self, entry, reason):
        self.entries[entry] = 'failed'

    def delete_superseded(self, keep):
        return 0

    def state(self):
        return self.entries.get('e1', 'none')


class FakePorts:
    """A BMC with the previous user enabled; each port can be told to fail."""

    def __init__(self, fail=None):
        self.fail = fail
        self.bmc_written = False
        self.ironic_user = 'admin'
        self.previous_enabled = True

    def set_in_band(self, username, password):
        if self.fail == 'set-in-band':
            raise RuntimeError('the agent answered FAILED: BMC refused')
        self.bmc_written = True
        return {'user_id': 3}

    def prove(self, username, password):
        if self.fail == 'prove':
            raise RuntimeError('IPMI call failed: power status')
        return states.POWER_ON

    def update_ironic(self, username, password):
        if self.fail == 'update-ironic':
            raise RuntimeError('node save failed')
        self.ironic_user = username

    def retire(self, as_user, as_password, username):
        if self.fail == 'retire-previous':
            return False, 'user disable 2: Insufficient privilege level'
        self.previous_enabled = False
        return True, 'user 2 (%s) disabled' % username
