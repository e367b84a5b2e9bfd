"""The data files this package shares with the TypeScript side."""

import json
import os
from typing import Any, Dict

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def load(name: str) -> Dict[str, Any]:
    """One of data/*.json (credential_contract, failure_table)."""
    with open(os.path.join(_DIR, name + '.json'), encoding='utf-8') as f:
        return json.load(f)
