"""``mlops diff``: tracked data added, modified and deleted between two commits."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

from mlops.core.git import has_commits, read_blobs, resolve_revision, tree_files
from mlops.core.repo import Repo
from mlops.errors import InputError
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.manifest import Entry, Manifest, build_manifest, manifest_changes
from mlops.storage.pointer import SUFFIX, parse_pointer
from mlops.storage.store import Store, load_manifest, manifest_bytes, open_store
from mlops.workspace.tracked import find_targets, hash_files, scan_folder

WORKSPACE = "workspace"


class ChangeKind(StrEnum):
    """How a file differs between two snapshots."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    """One file that differs."""

    path: str
    change: ChangeKind
    old: str | None
    new: str | None
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "change": self.change,
            "old_hash": self.old,
            "new_hash": self.new,
            "old_size": self.old_size,
            "new_size": self.new_size,
        }


# (hash, size) of every tracked file, keyed by repository-relative path
FileMap = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class _Tracked:
    """A tracked path on one side: a file's hash and size, or a folder's manifest (by its
    id in the cache, or built from the workspace)."""

    oid: str | None  # None: a folder of the workspace, known by ``manifest`` only
    size: int
    manifest: Manifest | None = None

    @property
    def is_folder(self) -> bool:
        return self.manifest is not None or (self.oid or "").endswith(DIR_SUFFIX)


def diff(repo: Repo, rev_a: str | None = None, rev_b: str | None = None) -> list[Change]:
    """Changes from ``rev_a`` (default HEAD) to ``rev_b`` (default: the workspace).

    Paths whose pointers agree cost nothing; two versions of a folder are compared
    through their manifests' rows, so the work follows what changed.
    """
    with open_store(repo) as store:
        if rev_a is None and not has_commits(repo.root):
            old: dict[str, _Tracked] = {}
        else:
            old = _tracked_at(store, resolve_revision(repo.root, rev_a or "HEAD"))
        new = (
            _tracked_in_workspace(store)
            if rev_b is None
            else _tracked_at(store, resolve_revision(repo.root, rev_b))
        )
        before: FileMap = {}
        after: FileMap = {}
        for path in old.keys() | new.keys():
            a, b = old.get(path), new.get(path)
            if a is not None and b is not None and a.oid is not None and a.oid == b.oid:
                continue
            if a is not None and b is not None and a.is_folder and b.is_folder:
                removed, added = manifest_changes(
                    _bytes(store, path, a),
                    _bytes(store, path, b),
                    (a.oid or f"{path} in the workspace", b.oid or f"{path} in the workspace"),
                )
                before.update(_files(path, removed))
                after.update(_files(path, added))
                continue
            if a is not None:
                before.update(_expand(store, path, a))
            if b is not None:
                after.update(_expand(store, path, b))
    changes = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was == now or (was and now and was[0] == now[0]):
            continue
        kind = (
            ChangeKind.ADDED
            if was is None
            else ChangeKind.DELETED
            if now is None
            else ChangeKind.MODIFIED
        )
        changes.append(
            Change(
                path,
                kind,
                was[0] if was else None,
                now[0] if now else None,
                was[1] if was else None,
                now[1] if now else None,
            )
        )
    return changes


def _bytes(store: Store, data_path: str, tracked: _Tracked) -> bytes:
    if tracked.manifest is not None:
        return tracked.manifest.to_bytes()
    assert tracked.oid is not None
    return manifest_bytes(store.cache, tracked.oid, data_path)


def _files(data_path: str, entries: list[Entry] | tuple[Entry, ...]) -> FileMap:
    return {f"{data_path}/{e.path}": (e.oid, e.size) for e in entries}


def _expand(store: Store, data_path: str, tracked: _Tracked) -> FileMap:
    if not tracked.is_folder:
        assert tracked.oid is not None
        return {data_path: (tracked.oid, tracked.size)}
    manifest = tracked.manifest
    if manifest is None:
        assert tracked.oid is not None
        manifest = load_manifest(store.cache, tracked.oid, data_path)
    return _files(data_path, manifest.entries)


def _tracked_at(store: Store, commit: str) -> dict[str, _Tracked]:
    pointer_blobs = tree_files(store.repo.root, commit, SUFFIX)
    contents = read_blobs(store.repo.root, pointer_blobs.values())
    tracked: dict[str, _Tracked] = {}
    for name, blob in pointer_blobs.items():
        if name.startswith(".mlops/"):
            continue
        where = f"{name} at {commit[:10]}"
        pointer = parse_pointer(contents[blob].decode(errors="replace"), where)
        data_path = posixpath.join(posixpath.dirname(name), pointer.path)
        tracked[data_path] = _Tracked(pointer.oid, pointer.size)
    return tracked


def _tracked_in_workspace(store: Store) -> dict[str, _Tracked]:
    """What is on disk now for every tracked path, hashed through the state cache."""
    tracked: dict[str, _Tracked] = {}
    repo = store.repo
    for target in find_targets(repo):
        rel, path = target.relpath(repo), target.data_path
        if path.is_file():
            tracked[rel] = _Tracked(store.state.hash(str(path)), path.stat().st_size)
        elif path.is_dir():
            manifest = build_manifest(hash_files(store, scan_folder(path), None, None))
            tracked[rel] = _Tracked(None, 0, manifest)
        else:  # not checked out: the pointer still says what the workspace holds
            tracked[rel] = _Tracked(target.pointer.oid, target.pointer.size)
    return tracked


def parse_revisions(revs: list[str]) -> tuple[str | None, str | None]:
    """Up to two revisions from the command line."""
    if len(revs) > 2:
        raise InputError("diff takes at most two revisions")
    return (revs[0] if revs else None, revs[1] if len(revs) > 1 else None)
