"""``mlops diff``: tracked data added, modified and deleted between two commits."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from mlops.core.git import has_commits, read_blobs, resolve_revision, tree_files
from mlops.core.repo import Repo
from mlops.errors import InputError
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.manifest import build_manifest
from mlops.storage.pointer import SUFFIX, Pointer, parse_pointer
from mlops.storage.store import Store, load_manifest, open_store
from mlops.workspace.tracked import find_targets, hash_files, scan_folder

WORKSPACE = "workspace"


@dataclass(frozen=True)
class Change:
    """One file that differs: ``added``, ``modified`` or ``deleted``."""

    path: str
    change: str
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


def diff(repo: Repo, rev_a: str | None = None, rev_b: str | None = None) -> list[Change]:
    """Changes from ``rev_a`` (default HEAD) to ``rev_b`` (default: the workspace)."""
    with open_store(repo) as store:
        if rev_a is None and not has_commits(repo.root):
            old: FileMap = {}
        else:
            old = _files_at(store, resolve_revision(repo.root, rev_a or "HEAD"))
        new = (
            _workspace_files(store)
            if rev_b is None
            else _files_at(store, resolve_revision(repo.root, rev_b))
        )
    changes = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before == after or (before and after and before[0] == after[0]):
            continue
        kind = "added" if before is None else "deleted" if after is None else "modified"
        changes.append(
            Change(
                path,
                kind,
                before[0] if before else None,
                after[0] if after else None,
                before[1] if before else None,
                after[1] if after else None,
            )
        )
    return changes


def _expand(store: Store, data_path: str, pointer: Pointer) -> FileMap:
    if not pointer.oid.endswith(DIR_SUFFIX):
        return {data_path: (pointer.oid, pointer.size)}
    manifest = load_manifest(store.cache, pointer.oid, data_path)
    return {posixpath.join(data_path, e.path): (e.oid, e.size) for e in manifest.entries}


def _files_at(store: Store, commit: str) -> FileMap:
    pointer_blobs = tree_files(store.repo.root, commit, SUFFIX)
    contents = read_blobs(store.repo.root, pointer_blobs.values())
    files: FileMap = {}
    for name, blob in pointer_blobs.items():
        if name.startswith(".mlops/"):
            continue
        where = f"{name} at {commit[:10]}"
        pointer = parse_pointer(contents[blob].decode(errors="replace"), where)
        data_path = posixpath.join(posixpath.dirname(name), pointer.path)
        files.update(_expand(store, data_path, pointer))
    return files


def _workspace_files(store: Store) -> FileMap:
    """What is on disk now for every tracked path, hashed through the state cache."""
    files: FileMap = {}
    repo = store.repo
    for target in find_targets(repo):
        rel, path = target.relpath(repo), target.data_path
        if path.is_file():
            files[rel] = (store.state.hash(str(path)), path.stat().st_size)
        elif path.is_dir():
            manifest = build_manifest(hash_files(store, scan_folder(path), None, None))
            files.update({posixpath.join(rel, e.path): (e.oid, e.size) for e in manifest.entries})
        else:  # not checked out: the pointer still says what the workspace holds
            files.update(_expand(store, rel, target.pointer))
    return files


def parse_revisions(revs: list[str]) -> tuple[str | None, str | None]:
    """Up to two revisions from the command line."""
    if len(revs) > 2:
        raise InputError("diff takes at most two revisions")
    return (revs[0] if revs else None, revs[1] if len(revs) > 1 else None)
