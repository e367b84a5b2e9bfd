"""The data files of the shared floor (service/ in the inband-agent checkout):
facts the TypeScript side declares and this package must agree with, read
rather than re-typed (docs/credential-contract.md, "The shared floor").

- credential-contract.json: the credential contract, privilege levels, the
  second-user suffix, the password policies and the sealed-value format;
- rotation-failures.json: the rotation failure table and step names.

Both are generated from the TypeScript (`npm run gen:credential-contract`).
An installed package carries copies in its data/ (ironic-driver/install.sh
puts them there); in the checkout they are read from service/ itself."""

import json
import os
from typing import Any, Dict, List

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT_SERVICE = os.path.join(os.path.dirname(os.path.dirname(_PACKAGE)), 'service')
#: Where the files are looked for, in order: the installed copy, then the checkout's service/.
SEARCH_PATH: List[str] = [os.path.join(_PACKAGE, 'data'), _CHECKOUT_SERVICE]

_cache: Dict[str, Dict[str, Any]] = {}


def _is_checkout(d: str) -> bool:
    # Only the inband-agent checkout's service/ (where the TypeScript declares
    # the contract), never some other folder that happens to sit two levels up
    # from an installed package.
    return d != _CHECKOUT_SERVICE or os.path.isfile(os.path.join(d, 'credential-contract.ts'))


def path(name: str) -> str:
    """The file service/<name>.json (its installed copy first)."""
    for d in SEARCH_PATH:
        p = os.path.join(d, name + '.json')
        if _is_checkout(d) and os.path.isfile(p):
            return p
    raise FileNotFoundError('%s.json is in none of %s: install the package with ironic-driver/install.sh '
                            '(it copies service/*.json into the package\'s data/)' % (name, ', '.join(SEARCH_PATH)))


def load(name: str) -> Dict[str, Any]:
    """One of the shared files: 'credential-contract' or 'rotation-failures'."""
    if name not in _cache:
        with open(path(name), encoding='utf-8') as f:
            _cache[name] = json.load(f)
    return _cache[name]
