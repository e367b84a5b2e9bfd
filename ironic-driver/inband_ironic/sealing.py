"""Sealing a BMC password to the running agent's auto-TLS certificate, in the
format of service/sealed-value.ts (opened by agent/tls/sealing-key.ts, sealed
the same way by conductor/seal.ts):

  epk  = a fresh EC key on the certificate key's curve
  Z    = ECDH(epk, agent key)
  key  = HKDF-SHA-256(Z, salt = nonce (32 random bytes),
                      info = "inband-agent sealed-secret v1" 0 purpose 0 node 0 user 0 kid)
  ct, tag = AES-256-GCM(key, iv (12 bytes), password, aad = alg 0 kid 0 crv 0 x 0 y)

`kid` is the base64url SHA-256 of the certificate key's SubjectPublicKeyInfo
DER; every binary field is base64url without padding."""

import base64
import datetime
import hashlib
import os
from typing import Dict, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_VERSION = 1
SEALED_ALG = 'ECDH-ES+A256GCM'
SEALED_INFO_LABEL = 'inband-agent sealed-secret v1'
SEALED_PURPOSE = 'set_bmc_credentials'

_CURVES = {'secp256r1': ('P-256', ec.SECP256R1), 'secp384r1': ('P-384', ec.SECP384R1),
           'secp521r1': ('P-521', ec.SECP521R1)}


class SealError(ValueError):
    pass


class Recipient(NamedTuple):
    key: ec.EllipticCurvePublicKey
    kid: str
    crv: str
    source: str
    not_after: datetime.datetime


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64u(hashlib.sha256(der).digest())


def recipient_from_pem(pem: bytes, source: str = 'given', now: datetime.datetime = None) -> Recipient:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise SealError('the agent certificate from %s does not parse: %s' % (source, e)) from None
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise SealError('the agent certificate from %s has no EC P-256/384/521 key (the agent\'s '
                        'auto-TLS key is one); nothing can be sealed to it' % source)
    now = now or datetime.datetime.utcnow()
    if cert.not_valid_after < now:
        raise SealError('the agent certificate from %s expired at %s' % (source, cert.not_valid_after.isoformat()))
    return Recipient(key, key_id(key), _CURVES[key.curve.name][0], source, cert.not_valid_after)


def _coord(n: int, size: int) -> str:
    return b64u(n.to_bytes(size, 'big'))


def info(purpose: str, node: str, user: str, kid: str) -> bytes:
    return '\0'.join([SEALED_INFO_LABEL, purpose, node, user, kid]).encode('utf-8')


def aad(alg: str, kid: str, epk: Dict[str, str]) -> bytes:
    return '\0'.join([alg, kid, epk['crv'], epk['x'], epk['y']]).encode('utf-8')


def seal(recipient: Recipient, password: str, node: str, user: str,
         purpose: str = SEALED_PURPOSE) -> Dict[str, object]:
    """The sealed value (a JSON-able dict) of `password` for `node`'s BMC user `user`."""
    curve = _CURVES[recipient.key.curve.name][1]()
    eph = ec.generate_private_key(curve)
    pub = eph.public_key().public_numbers()
    size = (curve.key_size + 7) // 8
    epk = {'kty': 'EC', 'crv': recipient.crv, 'x': _coord(pub.x, size), 'y': _coord(pub.y, size)}
    nonce = os.urandom(32)
    iv = os.urandom(12)
    z = eph.exchange(ec.ECDH(), recipient.key)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce,
               info=info(purpose, node, user, recipient.kid)).derive(z)
    sealed = AESGCM(key).encrypt(iv, password.encode('ascii'), aad(SEALED_ALG, recipient.kid, epk))
    return {
        'v': SEALED_VERSION, 'alg': SEALED_ALG, 'kid': recipient.kid, 'epk': epk,
        'nonce': b64u(nonce), 'iv': b64u(iv), 'ct': b64u(sealed[:-16]), 'tag': b64u(sealed[-16:]),
        'node': node, 'purpose': purpose, 'user': user,
    }
