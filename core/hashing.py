"""The one way the project turns settings into a cache key: sha256 of canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces; anything JSON cannot say (paths, dtypes) as its str()."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def canonical_hash(obj: Any, length: int | None = None) -> str:
    """sha256 hex digest of `canonical_json(obj)`, cut to `length` characters if given."""
    digest = hashlib.sha256(canonical_json(obj).encode()).hexdigest()
    return digest[:length] if length else digest


def bytes_hash(data: bytes, length: int | None = None) -> str:
    """sha256 hex digest of raw bytes (a tensor's contents), cut to `length` characters if given."""
    digest = hashlib.sha256(data).hexdigest()
    return digest[:length] if length else digest
