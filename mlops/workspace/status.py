"""``mlops status``: how the workspace and the cache differ from the pointers."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from mlops.core.parallel import Progress
from mlops.core.repo import Repo
from mlops.errors import CacheError
from mlops.storage.cache import SHARE_MIN_FILES
from mlops.storage.state import (
    FolderRecord,
    GroupUpdate,
    MonitorToken,
    group_file,
    group_files,
    group_text,
)
from mlops.storage.store import Store, load_manifest, open_store
from mlops.workspace.tracked import (
    LineScan,
    ScannedFile,
    Target,
    changed_inside,
    file_monitor,
    find_targets,
    fingerprint,
    group_fingerprints,
    group_of,
    group_slices,
    groups_touched,
    hash_files,
    remember_folder,
    scan_groups,
    scan_lines,
    split_scan,
    stat_lines,
)

if TYPE_CHECKING:
    from mlops.workspace.fsmonitor import Monitor


class WorkspaceState(StrEnum):
    """A tracked path in the work tree, against its pointer."""

    UNCHANGED = "unchanged"
    MODIFIED = "modified"
    MISSING = "missing"
    UNKNOWN = "unknown"  # a folder whose manifest is not in the cache


class CacheState(StrEnum):
    """Whether the cache holds a tracked path's objects."""

    OK = "ok"
    MISSING = "missing"  # some objects are not in the cache


@dataclass(frozen=True)
class DataStatus:
    """One tracked path compared with its pointer."""

    path: str
    pointer: str
    workspace: WorkspaceState
    cache: CacheState
    added: tuple[str, ...] = field(default=())
    modified: tuple[str, ...] = field(default=())
    deleted: tuple[str, ...] = field(default=())
    missing_objects: int = 0
    corrupt_objects: int = 0  # of the missing: found corrupt and set aside

    @property
    def clean(self) -> bool:
        return self.workspace == WorkspaceState.UNCHANGED and self.cache == CacheState.OK

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
    monitor = file_monitor(repo)
    with open_store(repo) as store:
        return [_status_of(store, t, monitor, jobs, progress) for t in find_targets(repo, paths)]


def _status_of(
    store: Store,
    target: Target,
    monitor: Monitor | None,
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus:
    repo, cache = store.repo, store.cache
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    path, oid = target.data_path, target.pointer.oid
    if not target.pointer.is_dir:
        missing = int(not cache.exists(oid))
        cache_state = CacheState.MISSING if missing else CacheState.OK
        corrupt = int(missing and cache.is_set_aside(oid))
        workspace = WorkspaceState.MISSING
        if path.is_file():
            workspace = (
                WorkspaceState.UNCHANGED
                if store.state.hash(str(path)) == oid
                else WorkspaceState.MODIFIED
            )
        return DataStatus(
            rel,
            pointer_rel,
            workspace,
            cache_state,
            missing_objects=missing,
            corrupt_objects=corrupt,
        )
    if monitor is None:
        return _folder_status(store, target, None, None, jobs, progress)
    # The monitor's token is taken before anything is looked at: a change made while
    # this status runs is in its next answer.
    saved = store.state.monitor_token(rel)
    now, changed = monitor.since(saved.token if saved else None)
    found = _folder_status(store, target, changed, saved, jobs, progress)
    if (
        found.workspace in (WorkspaceState.UNCHANGED, WorkspaceState.MODIFIED)
        and found.cache == CacheState.OK
    ):
        # What differs now is looked at again next time, changed or not.
        paths = sorted([*found.added, *found.modified, *found.deleted])
        listed = paths if len(paths) <= _LISTED else None
        token = MonitorToken(now, sorted(groups_touched(paths)), listed)
        if saved != token:  # nothing new: no write at all
            store.state.put_monitor_token(rel, token)
    return found


# The most files that differ from the snapshot for a token to list them: past that, the
# groups that hold them are scanned again each time instead.
_LISTED = 1000


def _folder_status(
    store: Store,
    target: Target,
    changed: list[str] | None,
    saved: MonitorToken | None,
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus:
    """A tracked folder's status; ``changed``: the paths the file-system monitor says
    changed since the folder was last compared with its record (None: unknown, so it is
    scanned), at the token ``saved``, which says what differed from it then."""
    repo, cache = store.repo, store.cache
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    path, oid = target.data_path, target.pointer.oid
    generation = cache.generation()
    folder = None
    if path.is_dir():
        record = store.state.folder(rel)
        current = record is not None and bool(generation) and record[1:] == (oid, generation)
        if current and changed is not None and saved is not None:
            found = _monitored(store, target, changed, saved, jobs, progress)
            if found is not None:
                return found
        # Unchanged stats since the folder last matched its snapshot: nothing to read. Only
        # a big folder is worth worker processes (its pointer says how many files it had).
        workers = jobs if target.pointer.files >= SHARE_MIN_FILES else 1
        scan = scan_lines(path, workers)
        groups = group_fingerprints(scan.lines, scan.groups)
        if record == FolderRecord(fingerprint(groups), oid, generation):
            return DataStatus(rel, pointer_rel, WorkspaceState.UNCHANGED, CacheState.OK)
        known = store.state.folder_groups(rel) if current else {}
        if known:
            differ = sorted(
                g for g in groups.keys() | known.keys() if groups.get(g) != known.get(g)
            )
            return _changed_groups(store, target, scan, groups, known, differ, jobs, progress)
        # Files whose stat line is as at the last snapshot keep their hash; the others
        # are hashed (through the state cache).
        before = store.state.folder_hashes(rel) if record is not None else {}
        folder = split_scan(path, scan, before)
    try:
        manifest = load_manifest(cache, oid, rel)
    except CacheError:
        workspace = WorkspaceState.UNKNOWN if folder is not None else WorkspaceState.MISSING
        return DataStatus(rel, pointer_rel, workspace, CacheState.MISSING, missing_objects=1)
    oids = {e.oid for e in manifest.entries}
    absent = oids - cache.existing(oids)
    missing = len(absent)
    corrupt = sum(1 for oid in absent if cache.is_set_aside(oid))
    cache_state = CacheState.MISSING if missing else CacheState.OK
    if folder is None:
        return DataStatus(
            rel,
            pointer_rel,
            WorkspaceState.MISSING,
            cache_state,
            missing_objects=missing,
            corrupt_objects=corrupt,
        )
    hashed = hash_files(store, folder.files, jobs, progress)
    entries = folder.completed([e.oid for e in hashed])
    wanted = {e.path: e.oid for e in manifest.entries}
    added, modified, deleted = _compare(wanted, {e.path: e.oid for e in entries})
    workspace = (
        WorkspaceState.MODIFIED if added or modified or deleted else WorkspaceState.UNCHANGED
    )
    if not missing and generation:
        # Recorded even when modified: the groups that differ are compared next time,
        # the others known from their stats.
        names = {g for g, _ in folder.groups} | {group_of(p) for p in wanted}
        touched = groups_touched([*added, *modified, *deleted]) & names
        stale: dict[str, list[tuple[str, str]]] = {g: [] for g in touched}
        for wanted_path, wanted_hash in wanted.items():
            if group_of(wanted_path) in stale:
                stale[group_of(wanted_path)].append((wanted_path, wanted_hash))
        hashes = [e.oid for e in entries]
        remember_folder(
            store.state, rel, oid, generation, folder.lines, folder.groups, hashes, stale
        )
    return DataStatus(
        rel, pointer_rel, workspace, cache_state, added, modified, deleted, missing, corrupt
    )


def _monitored(
    store: Store,
    target: Target,
    changed: list[str],
    saved: MonitorToken,
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus | None:
    """A folder's status from the paths the monitor says changed since the folder was
    last compared with its record (which is its pointer's), at the token ``saved``, and
    what differed then: only those files are looked at (``_listed``), or else only their
    groups are scanned. None when that cannot tell (the folder itself was replaced, or
    the record has no groups)."""
    repo = store.repo
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    inside = changed_inside(changed, rel)
    if inside is None:
        return None
    if not inside and not saved.groups:
        return DataStatus(rel, pointer_rel, WorkspaceState.UNCHANGED, CacheState.OK)
    known = store.state.folder_groups(rel)
    if not known:
        return None
    if saved.paths is not None:
        found = _listed(store, target, {*inside, *saved.paths}, jobs, progress)
        if found is not None:
            return found
    touched = groups_touched(inside) | set(saved.groups)
    scan = scan_groups(target.data_path, touched)
    groups = group_fingerprints(scan.lines, scan.groups)
    differ = sorted(g for g in touched if groups.get(g) != known.get(g))
    if not differ:
        return DataStatus(rel, pointer_rel, WorkspaceState.UNCHANGED, CacheState.OK)
    return _changed_groups(store, target, scan, groups, known, differ, jobs, progress)


def _listed(
    store: Store,
    target: Target,
    paths: set[str],
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus | None:
    """A folder's status from the only ``paths`` (relative to it) that can differ from
    its snapshot: those the monitor saw change and those that differed before, looked at
    one by one (a folder that appeared, by its listing). None when that cannot tell: too
    many paths, a new subfolder, something that is not a file, or stats that changed
    with no change of content (the group scan then brings the record up to date)."""
    if len(paths) > _LISTED or "" in paths:
        return None
    repo = store.repo
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    top = str(target.data_path)
    snapshot = _Recorded(store.state.folder_texts(rel, groups_touched(list(paths))))
    present: dict[str, os.stat_result] = {}
    gone: set[str] = set()
    for path in sorted(paths):
        recorded = snapshot.get(path)
        # Not a file of the snapshot: new, or one of its folders, whose files then went.
        below = snapshot.below(f"{path}/") if recorded is None else []
        try:
            st = os.lstat(f"{top}/{path}")
        except (FileNotFoundError, NotADirectoryError):
            gone.update([path] if recorded else below)
            continue
        if stat.S_ISREG(st.st_mode):
            present[path] = st
            gone.update(below)
            continue
        if not stat.S_ISDIR(st.st_mode):
            return None
        # A folder made or moved here (the monitor names each file in it too): its
        # files are looked at, a subfolder is left to the group scan.
        if recorded:
            gone.add(path)
        names = os.listdir(f"{top}/{path}")
        for name in names:
            inner = os.lstat(f"{top}/{path}/{name}")
            if not stat.S_ISREG(inner.st_mode):
                return None
            present.setdefault(f"{path}/{name}", inner)
        listed, start = set(names), len(path) + 1
        gone.update(p for p in below if p[start:].partition("/")[0] not in listed)
    looked_at = [ScannedFile(p, f"{top}/{p}", st) for p, st in sorted(present.items())]
    added, modified, restatted = [], [], False
    hashed = hash_files(store, looked_at, jobs, progress)
    for file, entry in zip(looked_at, hashed, strict=True):
        recorded = snapshot.get(file.relpath)
        if recorded is None:
            added.append(file.relpath)
        elif recorded[1] != entry.oid:
            modified.append(file.relpath)
        elif stat_lines([file])[0] != recorded[0]:
            restatted = True
    if added or modified or gone:
        return DataStatus(
            rel,
            pointer_rel,
            WorkspaceState.MODIFIED,
            CacheState.OK,
            tuple(added),
            tuple(modified),
            tuple(sorted(gone)),
        )
    if restatted:
        return None
    return DataStatus(rel, pointer_rel, WorkspaceState.UNCHANGED, CacheState.OK)


class _Recorded:
    """The record's files of a few groups (its pointer's snapshot), looked up by path."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def get(self, path: str) -> tuple[str, str] | None:
        """The recorded stat line and the snapshot's hash of the file ``path``."""
        text = self.texts.get(group_of(path))
        return None if text is None else group_file(text, path)

    def below(self, prefix: str) -> list[str]:
        """The snapshot's files whose paths start with ``prefix`` (a folder's, with "/")."""
        text = self.texts.get(group_of(f"{prefix}-"))
        if not text or (not text.startswith(prefix) and f"\n{prefix}" not in text):
            return []  # one search of the text, rather than parsing all of it
        paths = (line[: line.index("\0")] for line in group_files(text))
        return [p for p in paths if p.startswith(prefix)]


def _changed_groups(
    store: Store,
    target: Target,
    scan: LineScan,
    groups: dict[str, str],
    known: dict[str, str],
    changed: list[str],
    jobs: int | None,
    progress: Progress | None,
) -> DataStatus:
    """The status of a folder whose last recorded snapshot is its pointer's, from the
    ``changed`` groups (their fingerprints in ``groups`` differ from the ``known`` ones
    recorded then): the work follows the change, not the folder's size. Every object
    was present then, and none was deleted since (same generation)."""
    state, repo = store.state, store.repo
    rel, pointer_rel = target.relpath(repo), repo.relpath(target.pointer_file)
    before = state.folder_hashes(rel, changed)
    where = group_slices(scan.groups)
    present = [g for g in changed if g in where]
    part = LineScan(
        [line for g in present for line in scan.lines[where[g]]],
        scan.single_link,
        [(g, where[g].stop - where[g].start) for g in present],
    )
    folder = split_scan(target.data_path, part, before)
    hashed = hash_files(store, folder.files, jobs, progress)
    entries = folder.completed([e.oid for e in hashed])
    wanted = {line[: line.index("\0")]: oid for line, oid in before.items()}
    added, modified, deleted = _compare(wanted, {e.path: e.oid for e in entries})
    if added or modified or deleted:
        return DataStatus(
            rel, pointer_rel, WorkspaceState.MODIFIED, CacheState.OK, added, modified, deleted
        )
    # Only stats changed (touched, or copied back): the record follows, group by group.
    oids = [e.oid for e in entries]
    now = group_fingerprints(folder.lines, folder.groups)
    gone = {g for g in changed if g not in where}
    updates: dict[str, GroupUpdate] = dict.fromkeys(gone)
    for g, lines in group_slices(folder.groups).items():
        updates[g] = (now[g], group_text(folder.lines[lines], oids[lines]))
    every = {g: fp for g, fp in {**known, **groups, **now}.items() if g not in gone}
    generation = store.cache.generation()
    state.put_folder(
        rel, FolderRecord(fingerprint(every), target.pointer.oid, generation), updates, False
    )
    return DataStatus(rel, pointer_rel, WorkspaceState.UNCHANGED, CacheState.OK)


def _compare(
    wanted: dict[str, str], have: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Paths added, modified and deleted in ``have`` (path -> hash) against ``wanted``."""
    added = tuple(sorted(p for p in have if p not in wanted))
    deleted = tuple(sorted(p for p in wanted if p not in have))
    modified = tuple(sorted(p for p, oid in have.items() if p in wanted and wanted[p] != oid))
    return added, modified, deleted
