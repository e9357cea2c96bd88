"""Model file formats, and which of them are safe to load from someone else.

A joblib or pickle file runs code when it is loaded: load one only from people you
trust. A skops file (scikit-learn's safe format, ``mlops[skops]``) is loaded without
running code: only the types it is allowed to build are built. Registration records the
format and the types the file needs beyond skops's defaults (``format`` in the version's
record); loading allows those only when they come from scikit-learn, NumPy or SciPy, so
a record pushed by someone else cannot widen what a load may build.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError, RegistryError

SKOPS_EXTRA = "mlops[skops]"
_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")


class ModelFormat(enum.StrEnum):
    JOBLIB = "joblib"  # joblib or pickle: loading runs code
    SKOPS = "skops"  # loading runs no code


def format_of(path: str) -> ModelFormat | None:
    """The format a model file's name says, or None (not a model file mlops loads)."""
    name = path.lower()
    if name.endswith(".skops"):
        return ModelFormat.SKOPS
    if name.endswith((".joblib", ".pkl", ".pickle")):
        return ModelFormat.JOBLIB
    return None


def describe(path: Path) -> dict[str, Any] | None:
    """What registration records about a model file: its format, and for skops the types
    it needs trusted (read without loading it). None for other files."""
    kind = format_of(path.name)
    if kind is None or not path.is_file():
        return None
    if kind is ModelFormat.JOBLIB:
        return {"name": kind.value}
    sio = _skops()
    try:
        trusted = sorted(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises anything on a file that is not its own
        raise RegistryError(f"{path.name}: not a skops file: {type(exc).__name__}: {exc}") from None
    return {"name": kind.value, "trusted": trusted}


def load_bytes(data: bytes, recorded: dict[str, Any], path: str, ref: str) -> Any:
    """The model object in ``data``, loaded as its recorded format (else its name) says."""
    name = recorded.get("name") or format_of(path) or ModelFormat.JOBLIB
    if name == ModelFormat.SKOPS:
        return _load_skops(data, recorded, ref)
    import io

    import joblib

    return joblib.load(io.BytesIO(data))


def load_file(path: Path) -> Any:
    """Load a model file of the user's own (registration reads its signature from it); a
    skops file under the same rule as any load, so that mlops never runs one's code."""
    kind = format_of(path.name)
    if kind is ModelFormat.SKOPS:
        recorded = describe(path) or {}
        return _load_skops(path.read_bytes(), recorded, path.name)
    import joblib

    return joblib.load(path)


def _load_skops(data: bytes, recorded: dict[str, Any], ref: str) -> Any:
    sio = _skops()
    trusted = [str(t) for t in recorded.get("trusted", [])]
    foreign = [t for t in trusted if not t.startswith(_TRUSTED_MODULES)]
    if foreign:
        raise RegistryError(
            f"{ref}: its record trusts types outside scikit-learn, NumPy and SciPy "
            f"({', '.join(foreign[:3])}): not loaded; review the file and load it yourself"
        )
    try:
        return sio.loads(data, trusted=trusted)
    except Exception as exc:  # skops refuses untrusted types with its own exception
        raise RegistryError(
            f"{ref}: the skops file was not loaded: {type(exc).__name__}: {exc}"
        ) from None


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise MlopsError(
            f"skops model files need skops: install it with pip install '{SKOPS_EXTRA}'"
        ) from None
    return sio
