import base64
import datetime
import json
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from inband_ironic import sealing


def unb64(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def self_signed(key, days=1):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'agent')])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM)


def open_sealed(key, sealed):
    """The agent's half (agent/tls/sealing-key.ts), written again from the format."""
    epk = sealed['epk']
    size = (key.curve.key_size + 7) // 8
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64(epk['x']), 'big'), int.from_bytes(unb64(epk['y']), 'big'),
                                        key.curve).public_key()
    assert len(unb64(epk['x'])) == size
    z = key.exchange(ec.ECDH(), pub)
    k = HKDF(hashes.SHA256(), 32, unb64(sealed['nonce']),
             sealing.info(sealed['purpose'], sealed['node'], sealed['user'], sealed['kid'])).derive(z)
    return AESGCM(k).decrypt(unb64(sealed['iv']), unb64(sealed['ct']) + unb64(sealed['tag']),
                             sealing.aad(sealed['alg'], sealed['kid'], epk)).decode('ascii')


class SealingTestCase(unittest.TestCase):

    def setUp(self):
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.recipient = sealing.recipient_from_pem(self_signed(self.key), 'test')

    def test_round_trip_and_shape(self):
        sealed = sealing.seal(self.recipient, 'New-password-1', 'node-1', 'ironic')
        self.assertEqual('New-password-1', open_sealed(self.key, sealed))
        self.assertEqual({'v', 'alg', 'kid', 'epk', 'nonce', 'iv', 'ct', 'tag', 'node', 'purpose', 'user'}, set(sealed))
        self.assertEqual((1, 'ECDH-ES+A256GCM', 'set_bmc_credentials', 'P-384'),
                         (sealed['v'], sealed['alg'], sealed['purpose'], sealed['epk']['crv']))
        self.assertEqual(43, len(sealed['kid']))
        self.assertEqual(16, len(sealed['iv']))
        self.assertEqual(22, len(sealed['tag']))
        self.assertNotIn('New-password-1', json.dumps(sealed))

    def test_bound_to_node_and_user(self):
        sealed = sealing.seal(self.recipient, 'New-password-1', 'node-1', 'ironic')
        for field, value in (('node', 'node-2'), ('user', 'ironic_b'), ('purpose', 'other')):
            with self.subTest(field=field):
                bad = dict(sealed, **{field: value})
                self.assertRaises(Exception, open_sealed, self.key, bad)

    def test_refuses_non_ec_and_expired_certificates(self):
        from cryptography.hazmat.primitives.asymmetric import rsa
        rsa_key = rsa.generate_private_key(65537, 2048)
        self.assertRaises(sealing.SealError, sealing.recipient_from_pem, self_signed(rsa_key), 'rsa')
        old = self_signed(self.key, days=-0.5)
        self.assertRaises(sealing.SealError, sealing.recipient_from_pem, old, 'old')
        self.assertRaises(sealing.SealError, sealing.recipient_from_pem, b'not a pem', 'junk')
