"""BMC-safe random passwords by the policies and alphabet of
service/password-generator.ts (read from the shared floor's
credential-contract.json), drawn from `secrets`.

Every policy: printable ASCII only, at least `perClass` upper, lower and
digits, no two identical neighbours, first character alphanumeric."""

import secrets
from typing import Any, Callable, Dict, List, Optional

from inband_ironic import contract

POLICIES: List[Dict[str, Any]] = list(contract.SHARED['passwordPolicies'])
_ALPHABET = contract.SHARED['passwordAlphabet']
UPPER: str = _ALPHABET['upper']
LOWER: str = _ALPHABET['lower']
DIGITS: str = _ALPHABET['digits']
PER_CLASS: int = _ALPHABET['perClass']
_ALNUM = UPPER + LOWER + DIGITS


def policy_index(name: Optional[str] = None, length: Optional[int] = None) -> int:
    """The policy called `name`, or the first one `length` characters long (default the first)."""
    for i, p in enumerate(POLICIES):
        if (name is None or p['name'] == name) and (length is None or p['length'] == length):
            return i
    if name is not None:
        raise contract.ContractError('password_policy', 'must be one of %s%s' % (
            ', '.join(p['name'] for p in POLICIES),
            '' if length is None else ' with length %d' % length))
    raise contract.ContractError('password_length', 'must be one of %s' % ', '.join(
        sorted({str(p['length']) for p in POLICIES})))


def generate(index: int = 0, randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    policy = POLICIES[index]

    def pick(chars: str) -> str:
        return chars[randbelow(len(chars))]

    out: List[str] = []
    for _ in range(PER_CLASS):
        out += [pick(UPPER), pick(LOWER), pick(DIGITS)]
    if policy['specials']:
        out.append(pick(policy['specials']))
    while len(out) < policy['length']:
        out.append(pick(_ALNUM))
    for attempt in range(1000):
        for i in range(len(out) - 1, 0, -1):
            j = randbelow(i + 1)
            out[i], out[j] = out[j], out[i]
        if out[0] in _ALNUM and all(out[i] != out[i - 1] for i in range(1, len(out))):
            return ''.join(out)
        if attempt > 200:
            start = 3 * PER_CLASS + (1 if policy['specials'] else 0)
            for i in range(start, len(out)):
                out[i] = pick(_ALNUM)
    raise RuntimeError('could not draw a password for policy %s' % policy['name'])
