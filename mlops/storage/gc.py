"""Garbage collection: remove the cache objects a caller says nothing needs any more
(``mlops.flows.roots`` says what a repository needs)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from mlops.storage.store import Store

# Temporaries older than this belong to a process that died; younger ones may be in use.
_STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class GcResult:
    """Objects removed (or that would be, with ``dry_run``) and the bytes they held."""

    removed: int
    bytes: int
    kept: int
    dry_run: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "removed": self.removed,
            "bytes": self.bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
        }


def gc(store: Store, used: set[str], dry_run: bool = False) -> GcResult:
    """Remove the objects of ``store`` that are not in ``used`` (every object something
    needs, folders expanded to their files), and stale temporaries. The caller holds
    the repository lock."""
    removed = size = kept = 0
    for oid in list(store.cache.iter_objects()):
        if oid in used:
            kept += 1
            continue
        path = store.cache.path(oid)
        size += os.path.getsize(path)
        removed += 1
        if not dry_run:
            os.unlink(path)
    if not dry_run:
        if removed:
            store.cache.bump_generation()
        _sweep_stale_temporaries(store)
    return GcResult(removed, size, kept, dry_run)


def _sweep_stale_temporaries(store: Store) -> None:
    cutoff = time.time() - _STALE_TMP_SECONDS
    root = store.cache.root
    for prefix in os.listdir(root) if root.is_dir() else []:
        folder = root / prefix
        if not folder.is_dir():
            continue
        for name in os.listdir(folder):
            path = folder / name
            if name.startswith(".") and path.stat().st_mtime < cutoff:
                path.unlink()
