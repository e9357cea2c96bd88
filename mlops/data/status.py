"""``mlops status``: how the workspace and the cache differ from the pointers."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.data.workspace import (
    LineScan,
    Store,
    Target,
    find_targets,
    fingerprint,
    group_fingerprints,
    group_slices,
    hash_files,
    load_manifest,
    open_store,
    remember_folder,
    scan_lines,
    split_scan,
)
from mlops.errors import CacheError
from mlops.parallel import Progress
from mlops.repo import Repo
from mlops.storage.cache import SHARE_MIN_FILES
from mlops.storage.state import FolderRecord, GroupUpdate, group_text


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
        groups = group_fingerprints(scan.lines, scan.groups)
        if record == FolderRecord(fingerprint(groups), oid, generation):
            return DataStatus(rel, pointer_rel, "unchanged", "ok")
        if record is not None and generation and record[1:] == (oid, generation):
            found = _changed_groups(store, target, scan, groups, jobs, progress)
            if found is not None:
                return found
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
    wanted = {e.path: e.oid for e in manifest.entries}
    added, modified, deleted = _compare(wanted, {e.path: e.oid for e in entries})
    workspace = "modified" if added or modified or deleted else "unchanged"
    if workspace == "unchanged" and not missing and generation:
        hashes = [e.oid for e in entries]
        remember_folder(store.state, rel, oid, generation, folder.lines, folder.groups, hashes)
    return DataStatus(
        rel, pointer_rel, workspace, cache_state, added, modified, deleted, missing, corrupt
    )


def _changed_groups(
    store: Store,
    target: Target,
    scan: LineScan,
    groups: dict[str, str],
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus | None:
    """The status of a folder whose last recorded snapshot is its pointer's, from the
    groups of files whose stats changed since: the work follows the change, not the
    folder's size. Every object was present then, and none was deleted since (same
    generation). None when the record has no groups (written by an older mlops)."""
    state, repo = store.state, store.repo
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    known = state.folder_groups(rel)
    if not known:
        return None
    changed = sorted(g for g in groups.keys() | known.keys() if groups.get(g) != known.get(g))
    before = state.folder_hashes(rel, changed)
    where = group_slices(scan.groups)
    present = [g for g in changed if g in where]
    part = LineScan(
        [line for g in present for line in scan.lines[where[g]]],
        scan.executable,
        scan.single_link,
        [(g, where[g].stop - where[g].start) for g in present],
    )
    folder = split_scan(target.data_path, part, before)
    hashed = hash_files(store, folder.files, jobs, progress)
    entries = folder.completed([e.oid for e in hashed])
    wanted = {line[: line.index("\0")]: oid for line, oid in before.items()}
    added, modified, deleted = _compare(wanted, {e.path: e.oid for e in entries})
    if added or modified or deleted:
        return DataStatus(rel, pointer_rel, "modified", "ok", added, modified, deleted)
    # Only stats changed (touched, or copied back): the record follows, group by group.
    oids = [e.oid for e in entries]
    now = group_fingerprints(folder.lines, folder.groups)
    updates: dict[str, GroupUpdate] = {g: None for g in changed if g not in where}
    for g, lines in group_slices(folder.groups).items():
        updates[g] = (now[g], group_text(folder.lines[lines], oids[lines]))
    generation = store.cache.generation()
    record = FolderRecord(fingerprint({**groups, **now}), target.pointer.oid, generation)
    state.put_folder(rel, record, updates, complete=False)
    return DataStatus(rel, pointer_rel, "unchanged", "ok")


def _compare(
    wanted: dict[str, str], have: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Paths added, modified and deleted in ``have`` (path -> hash) against ``wanted``."""
    added = tuple(sorted(p for p in have if p not in wanted))
    deleted = tuple(sorted(p for p in wanted if p not in have))
    modified = tuple(sorted(p for p, oid in have.items() if p in wanted and wanted[p] != oid))
    return added, modified, deleted
