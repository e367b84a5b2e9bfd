import unittest

from inband_ironic import contract
from inband_ironic import passwords


class ContractCasesTestCase(unittest.TestCase):
    """The shared examples of the credential contract (service/credential-contract.ts
    CONTRACT_EXAMPLES; test/ironic-driver/shared-contract.test.ts runs the same)."""

    def test_usernames(self):
        for name, ok in contract.EXAMPLES['username']:
            with self.subTest(name=name):
                if ok:
                    self.assertEqual(name, contract.check_username(name))
                else:
                    self.assertRaises(contract.ContractError, contract.check_username, name)

    def test_password_lengths(self):
        for n, version, ok in contract.EXAMPLES['passwordBytes']:
            with self.subTest(n=n, version=version):
                if ok:
                    contract.check_password('a' * n, version)
                else:
                    self.assertRaises(contract.ContractError, contract.check_password, 'a' * n, version)

    def test_password_text(self):
        for text, ok in contract.EXAMPLES['passwordText']:
            with self.subTest(text=repr(text)):
                if ok:
                    contract.check_password(text)
                else:
                    with self.assertRaises(contract.ContractError) as cm:
                        contract.check_password(text)
                    self.assertNotIn(text, str(cm.exception))

    def test_pair_and_alternation(self):
        self.assertEqual(('ironic', 'ironic_b'), contract.user_pair('ironic'))
        self.assertRaises(contract.ContractError, contract.user_pair, 'abcdefghijklmno')  # _b makes 17 bytes
        self.assertRaises(contract.ContractError, contract.user_pair, 'a', 'a')
        pair = ('ironic', 'ironic_b')
        self.assertEqual('ironic_b', contract.next_username(pair, 'ironic'))
        self.assertEqual('ironic', contract.next_username(pair, 'ironic_b'))
        self.assertEqual('ironic', contract.next_username(pair, 'admin'))
        self.assertEqual('ironic', contract.next_username(pair, None))

    def test_privilege(self):
        self.assertEqual('administrator', contract.check_privilege('4'))
        self.assertEqual('administrator', contract.check_privilege(4))
        self.assertEqual('operator', contract.check_privilege('operator'))
        for bad in ('root', 'callback', '1', 5, 15, True, None):
            with self.subTest(bad=bad):
                self.assertRaises(contract.ContractError, contract.check_privilege, bad)
        self.assertEqual({'user': 2, 'operator': 3, 'administrator': 4}, contract.PRIVILEGES)

    def test_wire_params(self):
        contract.check_wire_params({'username': 'ironic', 'password_sealed': {'v': 1}, 'privilege': 'administrator'})
        contract.check_wire_params({'username': 'ironic', 'generate': True, 'channels': [1, 8], 'slot': 3})
        for params, field in (({'username': 'ironic'}, 'password'),
                              ({'username': 'ironic', 'generate': True, 'password': 'x'}, 'password'),
                              ({'username': 'ironic', 'generate': True, 'slot': 1}, 'slot'),
                              ({'username': 'ironic', 'generate': True, 'channels': [1, 1]}, 'channels'),
                              ({'username': 'ironic', 'generate': True, 'channels': [True]}, 'channels'),
                              ({'username': 'ironic', 'generate': True, 'wat': 1}, 'wat'),
                              ({'generate': True}, 'username')):
            with self.subTest(params=params):
                with self.assertRaises(contract.ContractError) as cm:
                    contract.check_wire_params(params)
                self.assertEqual(field, cm.exception.field)

    def test_messages_say_the_rule_and_never_the_value(self):
        with self.assertRaises(contract.ContractError) as cm:
            contract.check_password('Secret\u00e9pw')
        self.assertIn(contract.FIELDS['password']['rule'], str(cm.exception))
        self.assertIn('non-ASCII', str(cm.exception))
        self.assertNotIn('Secret', str(cm.exception))


class PasswordsTestCase(unittest.TestCase):

    def test_every_policy_yields_a_password_the_contract_takes(self):
        for i, p in enumerate(passwords.POLICIES):
            for _ in range(50):
                pw = passwords.generate(i)
                self.assertEqual(p['length'], len(pw))
                contract.check_password(pw, '2.0' if p['length'] > 16 else '1.5')
                self.assertTrue(pw[0].isalnum())
                self.assertTrue(all(a != b for a, b in zip(pw, pw[1:])))
                self.assertGreaterEqual(sum(c.isupper() for c in pw), 2)
                self.assertGreaterEqual(sum(c.isdigit() for c in pw), 2)
                if p['specials']:
                    self.assertTrue(any(c in p['specials'] for c in pw))

    def test_policy_choice(self):
        self.assertEqual(0, passwords.policy_index())
        self.assertEqual(2, passwords.policy_index(length=20))
        self.assertEqual(1, passwords.policy_index('alnum-16'))
        self.assertRaises(contract.ContractError, passwords.policy_index, 'weak')
        self.assertRaises(contract.ContractError, passwords.policy_index, None, 12)
