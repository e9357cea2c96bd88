"""JSON for the serving path: orjson when installed (``mlops[serve]`` brings it), else the
standard library, with the same output (compact; a non-finite float is ``null``).

orjson parses and writes several times faster than ``json``, which matters on the request
path.
"""

from __future__ import annotations

import json
import math
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - mlops predict without the serve extra
    orjson = None  # type: ignore[assignment]


def loads(body: bytes) -> Any:
    """A JSON document; ``json.JSONDecodeError`` or ``UnicodeDecodeError`` when it is not.

    orjson refuses ``NaN`` and ``Infinity``; the standard parser takes them, so that the
    input check can name the column that holds one.
    """
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, or malformed: the standard parser says which, and where
    return json.loads(body)


def dumps(value: Any) -> bytes:
    """Compact JSON of plain values (a non-finite float becomes ``null``)."""
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
