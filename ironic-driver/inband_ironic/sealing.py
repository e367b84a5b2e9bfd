"""Sealing a BMC password to the running agent's auto-TLS certificate, in the
format of service/sealed-value.ts (opened by agent/tls/sealing-key.ts, sealed
the same way by conductor/seal.ts), whose constants this module reads from the
shared floor's credential-contract.json (`sealedValue`) rather than re-typing:

  epk  = a fresh EC key on the certificate key's curve (one of `curves`)
  Z    = ECDH(epk, agent key)
  key  = HKDF-SHA-256(Z, salt = nonce (nonceBytes random bytes),
                      info = infoLabel 0 purpose 0 node 0 user 0 kid), keyBytes long
  ct, tag = AES-256-GCM(key, iv (ivBytes), password, aad = alg 0 kid 0 crv 0 x 0 y)

`kid` is the base64url SHA-256 of the certificate key's SubjectPublicKeyInfo
DER; every binary field is base64url without padding."""

import base64
import datetime
import hashlib
import os
from typing import Any, Dict, NamedTuple, Tuple, Type

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from inband_ironic import shared_data

FORMAT: Dict[str, Any] = shared_data.load('credential-contract')['sealedValue']
SEALED_VERSION: int = FORMAT['version']
SEALED_ALG: str = FORMAT['alg']
SEALED_INFO_LABEL: str = FORMAT['infoLabel']
SEALED_PURPOSE: str = FORMAT['purpose']
if (FORMAT['kdfHash'], FORMAT['encoding']) != ('sha256', 'base64url'):
    raise ValueError('sealed-value format %s/%s is not the one this module implements'
                     % (FORMAT['kdfHash'], FORMAT['encoding']))

#: cryptography's curve name (SEC 2) -> (JWK name, curve class), for the format's curves.
_CURVES: Dict[str, Tuple[str, Type[ec.EllipticCurve]]] = {
    c['sec2']: (c['jwk'], getattr(ec, c['sec2'].upper())) for c in FORMAT['curves']}


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
        raise SealError('the agent certificate from %s has no EC %s key (the agent\'s '
                        'auto-TLS key is one); nothing can be sealed to it'
                        % (source, '/'.join(jwk for jwk, _c in _CURVES.values())))
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
    nonce = os.urandom(FORMAT['nonceBytes'])
    iv = os.urandom(FORMAT['ivBytes'])
    z = eph.exchange(ec.ECDH(), recipient.key)
    key = HKDF(algorithm=hashes.SHA256(), length=FORMAT['keyBytes'], salt=nonce,
               info=info(purpose, node, user, recipient.kid)).derive(z)
    sealed = AESGCM(key).encrypt(iv, password.encode('ascii'), aad(SEALED_ALG, recipient.kid, epk))
    return {
        'v': SEALED_VERSION, 'alg': SEALED_ALG, 'kid': recipient.kid, 'epk': epk,
        'nonce': b64u(nonce), 'iv': b64u(iv), 'ct': b64u(sealed[:-FORMAT['tagBytes']]), 'tag': b64u(sealed[-FORMAT['tagBytes']:]),
        'node': node, 'purpose': purpose, 'user': user,
    }
