"""YAML documents remembered by the hash of their bytes, so that an unchanged mlops.yaml or
params.yaml is neither parsed nor PyYAML imported again: a no-op ``mlops run`` stays quick.

Entries live in ``.mlops/tmp/`` (never committed), one marshal file per content hash; a
document marshal cannot hold (a YAML date, say) is simply parsed every time.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from mlops.fsutil import atomic_write_bytes
from mlops.storage.hashing import hash_bytes
from mlops.yamlio import YamlProblem, parse_yaml

__all__ = ["YamlProblem", "cache_dir", "load_yaml"]

_KEEP = 64  # entries kept; older ones go when a new one is written


def cache_dir(root: Path) -> Path | None:
    """Where parsed documents of the repository at ``root`` are kept (None: no .mlops/)."""
    mlops_dir = root / ".mlops"
    if not mlops_dir.is_dir():
        return None
    # marshal's format belongs to one Python version.
    return mlops_dir / "tmp" / f"yaml-py{sys.version_info[0]}{sys.version_info[1]}"


def load_yaml(data: bytes, folder: Path | None) -> Any:
    """The YAML document in ``data``, from ``folder`` when it was parsed before."""
    entry = folder / hash_bytes(data)[:40] if folder is not None else None
    if entry is not None:
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            return marshal.loads(entry.read_bytes())
    doc = parse_yaml(data)
    if entry is not None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: not marshallable
            atomic_write_bytes(entry, marshal.dumps(doc))
            _trim(entry.parent)
    return doc


def _trim(folder: Path) -> None:
    entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    if len(entries) > _KEEP:
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for old in entries[: len(entries) - _KEEP]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old.path)
