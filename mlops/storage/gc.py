"""``mlops gc``: remove cache objects that nothing needs any more."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mlops.core.git import all_commits, read_blobs, ref_commits, tree_files
from mlops.core.repo import Repo, repo_lock
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.pointer import SUFFIX, parse_pointer
from mlops.storage.store import Store, load_manifest, open_store
from mlops.workspace.tracked import find_targets

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


def gc(repo: Repo, all_commits_: bool = False, dry_run: bool = False) -> GcResult:
    """Remove objects not needed by the workspace, a branch or tag (or any commit)."""
    with repo_lock(repo, wait=30, purpose="gc"), open_store(repo) as store:
        commits = all_commits(repo.root) if all_commits_ else ref_commits(repo.root)
        used = kept_objects(store, commits, uncached=True)
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


def kept_objects(
    store: Store, commits: list[str], held_only: bool = False, uncached: bool = False
) -> set[str]:
    """What ``gc`` keeps and ``push`` shares: ``used_objects`` plus every registered model
    version and monitoring record (with ``held_only``, those this cache holds: a
    teammate's version that was never pushed is not ours to send). ``uncached``: see
    ``used_objects``."""
    from mlops.monitor.monitoring import monitor_objects
    from mlops.registry.content import registry_objects

    extra = registry_objects(store.repo) | monitor_objects(store.repo)
    if held_only:
        extra = store.cache.existing(extra)
    return used_objects(store, commits, extra, uncached)


def used_objects(
    store: Store, commits: list[str], extra: Iterable[str] = (), uncached: bool = False
) -> set[str]:
    """Every object the workspace and ``commits`` need (data pointers, cached pipeline
    outputs and their run records), plus ``extra``, folders expanded to their files.
    ``uncached`` adds the copies of ``cache: false`` outputs (see ``lock_objects``)."""
    from mlops.pipeline.lock import lock_objects

    repo = store.repo
    roots = {t.pointer.oid for t in find_targets(repo)}
    roots |= lock_objects(store, commits, uncached)
    roots.update(extra)
    for commit in commits:
        blobs = tree_files(repo.root, commit, SUFFIX)
        contents = read_blobs(repo.root, blobs.values())
        for name, blob in blobs.items():
            text = contents[blob].decode(errors="replace")
            roots.add(parse_pointer(text, f"{name} at {commit[:10]}").oid)
    used = set(roots)
    for oid in roots:
        if oid.endswith(DIR_SUFFIX) and store.cache.exists(oid):
            used.update(e.oid for e in load_manifest(store.cache, oid, oid).entries)
    return used


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
