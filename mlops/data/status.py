"""``mlops status``: how the workspace and the cache differ from the pointers."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.data.workspace import (
    Store,
    Target,
    find_targets,
    fingerprint,
    hash_files,
    load_manifest,
    open_store,
    scan_lines,
    split_scan,
)
from mlops.errors import CacheError
from mlops.parallel import Progress
from mlops.repo import Repo
from mlops.storage.cache import SHARE_MIN_FILES
from mlops.storage.manifest import Entry
from mlops.storage.state import FolderRecord


@dataclass(frozen=True)
class DataStatus:
    """One tracked path compared with its pointer.

    ``workspace``: unchanged, modified, missing, or unknown (manifest not in the cache).
    ``cache``: ok, or missing (some objects are not in the cache).
    """

    path: str
    pointer: str
    workspace: str
    cache: str
    added: tuple[str, ...] = field(default=())
    modified: tuple[str, ...] = field(default=())
    deleted: tuple[str, ...] = field(default=())
    missing_objects: int = 0
    corrupt_objects: int = 0  # of the missing: found corrupt and set aside

    @property
    def clean(self) -> bool:
        return self.workspace == "unchanged" and self.cache == "ok"

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "pointer": self.pointer,
            "workspace": self.workspace,
            "cache": self.cache,
            "added": list(self.added),
            "modified": list(self.modified),
            "deleted": list(self.deleted),
            "missing_objects": self.missing_objects,
            "corrupt_objects": self.corrupt_objects,
        }


def data_status(
    repo: Repo,
    paths: list[str] | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> list[DataStatus]:
    """The status of every tracked path (or those under ``paths``)."""
    store = open_store(repo)
    try:
        return [_status_of(store, t, jobs, progress) for t in find_targets(repo, paths)]
    finally:
        store.state.flush()


def _status_of(
    store: Store, target: Target, jobs: int | None, progress: Progress | None
) -> DataStatus:
    repo, cache = store.repo, store.cache
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    path, oid = target.data_path, target.pointer.oid
    if not target.pointer.is_dir:
        missing = int(not cache.exists(oid))
        cache_state = "missing" if missing else "ok"
        corrupt = int(missing and cache.is_set_aside(oid))
        workspace = "missing"
        if path.is_file():
            workspace = "unchanged" if store.state.hash(str(path)) == oid else "modified"
        return DataStatus(
            rel,
            pointer_rel,
            workspace,
            cache_state,
            missing_objects=missing,
            corrupt_objects=corrupt,
        )
    generation = cache.generation()
    folder = None
    if path.is_dir():
        # Unchanged stats since the folder last matched its snapshot: nothing to read. Only
        # a big folder is worth worker processes (its pointer says how many files it had).
        workers = jobs if target.pointer.files >= SHARE_MIN_FILES else 1
        scan = scan_lines(path, workers)
        record = store.state.folder(rel)
        if record == FolderRecord(fingerprint(scan.lines), oid, generation):
            return DataStatus(rel, pointer_rel, "unchanged", "ok")
        # Files whose stat line is as at the last snapshot keep their hash; the others
        # are hashed (through the state cache).
        before = store.state.folder_hashes(rel) if record is not None else {}
        folder = split_scan(path, scan, before)
    try:
        manifest = load_manifest(cache, oid, rel)
    except CacheError:
        workspace = "unknown" if folder is not None else "missing"
        return DataStatus(rel, pointer_rel, workspace, "missing", missing_objects=1)
    oids = {e.oid for e in manifest.entries}
    absent = oids - cache.existing(oids)
    missing = len(absent)
    corrupt = sum(1 for oid in absent if cache.is_set_aside(oid))
    cache_state = "missing" if missing else "ok"
    if folder is None:
        return DataStatus(
            rel,
            pointer_rel,
            "missing",
            cache_state,
            missing_objects=missing,
            corrupt_objects=corrupt,
        )
    hashed = hash_files(store, folder.files, jobs, progress)
    entries = folder.completed([e.oid for e in hashed])
    have = {e.path: e for e in entries}
    added, modified, deleted = _compare(manifest.by_path(), have)
    workspace = "modified" if added or modified or deleted else "unchanged"
    if workspace == "unchanged" and not missing and generation:
        record = FolderRecord(fingerprint(folder.lines), oid, generation)
        store.state.put_folder(rel, record, folder.lines, [e.oid for e in entries])
    return DataStatus(
        rel, pointer_rel, workspace, cache_state, added, modified, deleted, missing, corrupt
    )


def _compare(
    wanted: dict[str, Entry], have: dict[str, Entry]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    added = tuple(sorted(p for p in have if p not in wanted))
    deleted = tuple(sorted(p for p in wanted if p not in have))
    modified = tuple(sorted(p for p, e in have.items() if p in wanted and wanted[p].oid != e.oid))
    return added, modified, deleted
