"""``mlops add``: snapshot files and folders into the cache and write their pointers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlops.core.fsutil import atomic_write_text
from mlops.core.git import ignore_pattern, tracked_paths
from mlops.core.parallel import Progress
from mlops.core.repo import Repo, repo_lock
from mlops.errors import InputError
from mlops.storage.cache import SHARE_MIN_FILES, is_executable
from mlops.storage.hashing import DIR_SUFFIX, MMAP_THRESHOLD
from mlops.storage.links import SHARED
from mlops.storage.manifest import Entry, build_manifest, manifest_bytes, manifest_rows
from mlops.storage.paths import RESERVED, all_safe, unsafe_reason
from mlops.storage.pointer import SUFFIX, Pointer, pointer_path, write_pointer
from mlops.storage.state import MonitorToken, group_text
from mlops.storage.store import Store, open_store
from mlops.workspace.tracked import (
    DIFFERS,
    FolderScan,
    ScannedFile,
    changed_inside,
    file_monitor,
    find_targets,
    group_slices,
    group_updates,
    groups_touched,
    line_groups,
    lines_fingerprint,
    list_files,
    remember_groups,
    scan_groups,
    scan_lines,
    scanned_file,
    split_scan,
    stat_line,
)

if TYPE_CHECKING:
    from mlops.workspace.fsmonitor import Monitor

# The longest file name the usual file systems (ext4, XFS, Btrfs, APFS) take, in bytes.
_NAME_MAX = 255


@dataclass(frozen=True)
class AddResult:
    """What ``add`` recorded for one path."""

    path: str
    pointer: str
    oid: str
    size: int
    files: int
    stored: int  # objects that were not in the cache before


def add(
    repo: Repo, paths: list[str], jobs: int | None = None, progress: Progress | None = None
) -> list[AddResult]:
    """Snapshot ``paths`` (files or folders) and write ``PATH.mlops`` beside each."""
    if not paths:
        raise InputError("nothing to add: name at least one file or folder")
    targets = [_validate(repo, raw) for raw in paths]
    monitor = file_monitor(repo)
    results = []
    with repo_lock(repo, wait=30, purpose="add"), open_store(repo) as store:
        for path in targets:
            results.append(_add_one(store, path, jobs, progress, monitor))
    return results


def _validate(repo: Repo, raw: str) -> Path:
    path = Path(os.path.abspath(raw))
    root = repo.root
    if path != root and root not in path.parents:
        raise InputError(f"{raw}: outside the repository {root}")
    rel = path.relative_to(root)
    if not rel.parts:
        raise InputError(f"{raw}: cannot add the repository root; name a file or folder in it")
    reserved = [part for part in rel.parts if part.lower() in RESERVED]
    if reserved:
        raise InputError(f"{raw}: inside {reserved[0]}/, which mlops does not track")
    check_restorable([rel.as_posix()], raw)
    if "\n" in path.name:
        raise InputError(f"{raw}: a name with a line break cannot be ignored in Git; rename it")
    if len(os.fsencode(path.name + SUFFIX)) > _NAME_MAX:
        raise InputError(
            f"{raw}: name too long for its pointer file {path.name}{SUFFIX} "
            f"(at most {_NAME_MAX - len(SUFFIX)} bytes); rename it"
        )
    if path.is_symlink():
        raise InputError(f"{raw}: a symbolic link; add the file or folder it points to")
    if not path.exists():
        raise InputError(f"{raw}: no such file or folder")
    if path.name.endswith(SUFFIX):
        raise InputError(f"{raw}: a pointer file; add the data it describes instead")
    if not (path.is_file() or path.is_dir()):
        raise InputError(f"{raw}: not a regular file or folder")
    in_git = tracked_paths(root, rel.as_posix())
    if in_git:
        raise InputError(
            f"{rel.as_posix()} is tracked by Git; untrack it first with "
            f"`git rm -r --cached {rel.as_posix()}` (the files stay on disk)"
        )
    for target in find_targets(repo):
        other = target.data_path
        if other != path and (other in path.parents or path in other.parents):
            raise InputError(
                f"{rel.as_posix()} overlaps {repo.relpath(other)}, which mlops already tracks "
                f"({repo.relpath(target.pointer_file)})"
            )
    return path


def _add_one(
    store: Store, path: Path, jobs: int | None, progress: Progress | None, monitor: Monitor | None
) -> AddResult:
    repo = store.repo
    pointer, stored = snapshot(store, path, jobs, progress, monitor)
    # The pointer is written last: until it lands, the previous snapshot stays current.
    pointer_file = pointer_path(path)
    write_pointer(pointer_file, pointer, repo.scratch_dir)
    ignore_in_git(repo.root, [repo.relpath(path)], repo.scratch_dir)
    return AddResult(
        repo.relpath(path),
        repo.relpath(pointer_file),
        pointer.oid,
        pointer.size,
        pointer.files,
        stored,
    )


def snapshot(
    store: Store,
    path: Path,
    jobs: int | None = None,
    progress: Progress | None = None,
    monitor: Monitor | None = None,
) -> tuple[Pointer, int]:
    """Store a file or folder in the cache; return its pointer and how many objects were new.

    Takes no lock and writes no pointer file: callers (``add``, the pipeline) do both.
    With the file-system ``monitor``, a folder stored before is scanned only where the
    monitor saw changes.
    """
    if store.linker.chosen is None:
        store.linker.probe(store.repo.cache_dir, store.repo.mlops_dir)
    if not path.is_dir():
        files = [ScannedFile("", str(path), os.stat(path))]
        oids, stored, _ = _hash_and_store(store, files, {}, jobs, progress)
        return Pointer(path.name, oids[0], files[0].st.st_size, 1), stored
    rel = store.repo.relpath(path)
    if progress:
        progress("scanning", 0, 0)  # how many files is known only once it is done
    saved = store.state.monitor_token(rel) if monitor is not None else None
    # The monitor's token from before anything is looked at: what changes after it is
    # seen next time.
    token, changed = monitor.since(saved.token if saved else None) if monitor else (None, None)
    recorded = _last_files(store, rel)
    if recorded and store.linker.chosen != "symlink":  # symlinks: every link is checked
        folder = _rescan(store, path, rel, jobs, recorded, saved, changed)
        check_restorable([f.relpath for f in folder.files], rel)
    else:
        found = list_files(path)
        check_restorable([relpath for relpath, _ in found], rel)
        if len(found) >= SHARE_MIN_FILES:
            return _snapshot_in_shares(store, path, found, token, jobs, progress)
        folder = FolderScan.of_files([scanned_file(*file) for file in found])
    if progress:
        progress("scanning", len(folder.files), len(folder.files))
    oids, stored, replaced = _hash_and_store(store, folder.files, folder.unchanged, jobs, progress)
    entries = folder.completed(oids)
    manifest = build_manifest(entries)
    oid = store.cache.add_bytes(manifest.to_bytes(), DIR_SUFFIX)
    if not replaced:  # the scanned stats still hold: next status is quick
        every = [entry.oid for entry in entries]
        _remember(store, rel, oid, token, group_updates(folder.lines, folder.groups, every))
    return Pointer(path.name, oid, manifest.size, len(manifest.entries)), stored


def _snapshot_in_shares(
    store: Store,
    path: Path,
    found: list[tuple[str, os.DirEntry[str]]],
    token: str | None,
    jobs: int | None,
    progress: Progress | None,
) -> tuple[Pointer, int]:
    """``snapshot`` of a folder first seen, whose files ``list_files`` found.

    Each worker process takes a share of the files from their stat to their share of
    the manifest's rows and of the folder's record (``_store_share``): nothing is done
    for each file here, where it would be done one file at a time.
    """
    if progress:
        progress("scanning", len(found), len(found))
    shares = store.cache.map_shares(
        lambda share: [_store_share(store, share)], found, jobs, progress, "adding"
    )
    # Sorted by key, the pieces' rows are in path order (see ``_Share``).
    pieces = sorted(chain.from_iterable(share.pieces for share in shares))
    data = manifest_bytes(",".join([rows for _, rows in pieces]))
    oid = store.cache.add_bytes(data, DIR_SUFFIX)
    if store.linker.chosen != "symlink":  # symlinks: every link is checked anyway
        _remember(store, store.repo.relpath(path), oid, token, _joined_groups(shares))
    size = sum(share.size for share in shares)
    return Pointer(path.name, oid, size, len(found)), sum(share.stored for share in shares)


class _Share(NamedTuple):
    """What a worker of ``_snapshot_in_shares`` sends back of its share of the files.

    ``parts``: for each group (``group_of``) its files are in, in scan order, their stat
    lines joined by line breaks and their ``group_text``; a group that a share boundary
    cuts comes in two parts. ``pieces``: (key, manifest rows) such that all pieces, sorted
    by key, give every row in path order: a group wholly inside the share is one piece
    under the key ``NAME/`` (which every path in it starts with, and no other path), and
    the files of the groups at the share's ends (maybe cut), and at the folder's top, a
    piece each under their path.
    """

    parts: list[tuple[str, str, str]]
    pieces: list[tuple[str, str]]
    size: int
    stored: int


_CHUNK = 512  # files a worker looks up in the state at once
_WRITE_EVERY = 20_000  # rows a worker learns before it writes them to the state


def _store_share(store: Store, share: Sequence[tuple[str, os.DirEntry[str]]]) -> _Share:
    """Stat, hash, store and link the files of ``share`` (of ``list_files``); see ``_Share``."""
    files: list[ScannedFile] = []
    oids: list[str] = []
    now: dict[int, os.stat_result] = {}  # the stats of files replaced by a link
    stored = 0
    state, mark = store.state, store.state.pending_mark()
    done = iter(share)  # advanced as files are done: the share's progress counts them
    for start in range(0, len(share), _CHUNK):
        chunk = _scanned(share[start : start + _CHUNK])  # a slice is not counted
        if state.pending_mark() - mark >= _WRITE_EVERY:
            state.write_rows(mark)  # while the other workers hash: not all at the end
        known = state.get_many([f.st for f in chunk], preload=False)
        present = store.cache.existing(oid for oid in known if oid)
        chunk_oids, chunk_stored, replaced = _store_missing(
            store, chunk, known, present, lambda process, items: [process(i) for i in items]
        )
        for i in replaced:  # now a link to the object (a copy of another file's bytes)
            now[len(files) + i] = os.stat(chunk[i].abspath)
        files += chunk
        oids += chunk_oids
        stored += chunk_stored
        for _ in islice(done, len(chunk)):
            pass
    lines = [stat_line(f.relpath, now.get(i, f.st)) for i, f in enumerate(files)]
    parts: list[tuple[str, str, str]] = []
    pieces: list[tuple[str, str]] = []
    groups = group_slices(line_groups(lines))  # each group's files are together
    for k, (name, part) in enumerate(groups.items()):
        parts.append((name, "\n".join(lines[part]), group_text(lines[part], oids[part])))
        entries = [
            Entry(f.relpath, oid, f.st.st_size, is_executable(f.st))
            for f, oid in zip(files[part], oids[part], strict=True)
        ]
        if name and 0 < k < len(groups) - 1:
            pieces.append((f"{name}/", manifest_rows(sorted(entries))))
        else:
            pieces += [(entry.path, manifest_rows([entry])) for entry in entries]
    return _Share(parts, pieces, sum(f.st.st_size for f in files), stored)


def _scanned(listed: Iterable[tuple[str, os.DirEntry[str]]]) -> list[ScannedFile]:
    """The files of ``list_files`` with their stats; one removed since it was listed
    is a clear error (the folder changed while it was being added)."""
    try:
        return [scanned_file(*file) for file in listed]
    except FileNotFoundError as exc:
        raise InputError(
            f"{exc.filename}: removed while its folder was being added; add it again"
        ) from None


def _joined_groups(shares: list[_Share]) -> dict[str, tuple[str, str]]:
    """Each group's (fingerprint, ``group_text``) from its parts in the ``shares``."""
    lines: dict[str, list[str]] = {}
    texts: dict[str, list[str]] = {}
    for share in shares:  # a group's parts in scan order
        for name, part_lines, part_text in share.parts:
            lines.setdefault(name, []).append(part_lines)
            texts.setdefault(name, []).append(part_text)
    return {
        name: (lines_fingerprint("\n".join(parts)), "\n".join(texts[name]))
        for name, parts in lines.items()
    }


def _remember(
    store: Store,
    rel: str,
    oid: str,
    token: str | None,
    groups: dict[str, tuple[str, str]],
) -> None:
    """Record that folder ``rel`` holds snapshot ``oid`` while its files are as scanned
    (``groups``: see ``remember_groups``); with the monitor's ``token``,
    that no group has changed since. Nothing when the cache has no generation yet."""
    generation = store.cache.generation()
    if not generation:
        return
    remember_groups(store.state, rel, oid, generation, groups)
    if token is not None:  # every group now matches the record: none is dirty
        store.state.put_monitor_token(rel, MonitorToken(token, [], []))


def check_restorable(paths: list[str], where: str) -> None:
    """Refuse names that could not come back as they are: a ``.git`` or ``.mlops``
    folder inside (checkout refuses to write one), and bytes that are not UTF-8 (Git,
    JSON and every remote need text)."""
    if not all_safe(paths):
        bad = next(p for p in paths if unsafe_reason(p) is not None)
        raise InputError(
            f"{where}: {bad!r} {unsafe_reason(bad)}, which mlops never writes back; "
            "move it out of the folder or delete it"
        )
    try:
        "\0".join(paths).encode()
    except UnicodeEncodeError:
        bad = next(p for p in paths if not _is_utf8(p))
        shown = os.fsencode(bad).decode(errors="backslashreplace")
        raise InputError(
            f"{where}: file name '{shown}' is not UTF-8 text; rename it (mlops stores names "
            "as text, so it could not be restored)"
        ) from None


def _is_utf8(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _rescan(
    store: Store,
    path: Path,
    rel: str,
    jobs: int | None,
    recorded: dict[str, tuple[str, dict[str, str]]],
    saved: MonitorToken | None,
    changed: list[str] | None,
) -> FolderScan:
    """Scan folder ``path`` (``rel`` in the repository), stored before with the files
    ``recorded`` (``_last_files``), for ``snapshot``.

    Only its stat lines are scanned, in worker processes for a big folder
    (``scan_lines``), and only the files whose line changed are looked at
    (``split_scan``). With the monitor (its token ``saved`` when the folder was last
    compared, and what it ``changed`` since), only the groups it saw changed (or that
    differed when last compared) are scanned; the others are as recorded.
    """
    links = store.linker.chosen == "hardlink"
    before = {line: oid for _, files in recorded.values() for line, oid in files.items()}
    inside = None if changed is None else changed_inside(changed, rel)
    if saved is None or inside is None:
        return split_scan(path, scan_lines(path, jobs, links=links), before)
    touched = groups_touched(inside) | set(saved.groups)
    touched |= {name for name, (fp, _) in recorded.items() if fp == DIFFERS}
    scan = scan_groups(path, touched, links)
    for name, (_, files) in recorded.items():
        if name not in touched:  # unchanged since its lines were recorded
            scan.lines.extend(files)
            scan.groups.append((name, len(files)))
    return split_scan(path, scan, before)


def _last_files(store: Store, rel: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Folder ``rel``'s files when it last matched its snapshot, by group (see
    ``StateCache.folder_files``; empty when unknown). Their objects are still present
    if no object was deleted since: the cache's generation is the same."""
    state, cache = store.state, store.cache
    record = state.folder(rel)
    if record is None or record.generation != cache.generation():
        return {}
    return state.folder_files(rel)


def _hash_and_store(
    store: Store,
    files: list[ScannedFile],
    unchanged: dict[int, str],
    jobs: int | None,
    progress: Progress | None,
) -> tuple[list[str], int, bool]:
    """Each file's hash, storing what the cache lacks in the same pass.

    ``unchanged`` gives the hashes of files known unchanged since the folder's last
    snapshot (see ``workspace.tracked.split_scan``); the state cache is asked about the others.
    Returns the hashes, how many new objects were stored, and whether any
    workspace file was replaced by a link to an object stored before.
    """
    cache, state = store.cache, store.state
    if len(files) - len(unchanged) > 100:
        state.preload()  # one read of every row beats many single lookups
    known = state.get_many([f.st for f in files])
    for i, oid in unchanged.items():
        known[i] = oid
    present = set(unchanged.values()) | cache.existing(
        oid for i, oid in enumerate(known) if oid and i not in unchanged
    )
    oids, stored, replaced = _store_missing(
        store,
        files,
        known,
        present,
        lambda process, items: cache.map_files(process, items, jobs, progress, "adding"),
    )
    return oids, stored, bool(replaced) or store.linker.chosen == "symlink"


_Outcome = tuple[int, str, bool, bool]  # index, hash, stored, replaced


def _store_missing(
    store: Store,
    files: list[ScannedFile],
    known: list[str | None],
    present: set[str],
    map_files: Callable[[Callable[[int], _Outcome], list[int]], list[_Outcome]],
) -> tuple[list[str], int, list[int]]:
    """Hash the ``files`` whose hash is not ``known``, and store and link back those not
    settled yet (``present``: the known hashes the cache has), the small ones through
    ``map_files``. Returns every file's hash, how many objects were new, and which
    workspace files were replaced by a link to an object stored before."""
    cache, state, linker = store.cache, store.state, store.linker
    kind = linker.chosen

    def settled(f: ScannedFile, oid: str | None) -> bool:
        # Known, stored, and already sharing the cache's inode where that is wanted.
        return oid in present and (kind not in SHARED or (kind == "hardlink" and f.st.st_nlink > 1))

    work = [i for i, (f, oid) in enumerate(zip(files, known, strict=True)) if not settled(f, oid)]

    def process(i: int) -> _Outcome:
        f = files[i]
        oid = known[i] or state.hash_unknown(f.abspath, f.st)
        return (i, oid, *cache.add_file(f.abspath, oid, f.st, linker, oid in present))

    # Big files first, here: blake3 hashes each of them on every core by itself.
    big = [i for i in work if files[i].st.st_size >= MMAP_THRESHOLD]
    small = [i for i in work if files[i].st.st_size < MMAP_THRESHOLD]
    outcomes = [process(i) for i in big]
    outcomes += map_files(process, small)
    oids = list(known)
    stored, replaced = 0, []
    for i, oid, new, swapped in outcomes:
        oids[i] = oid
        stored += new
        if swapped:
            replaced.append(i)
    return [oid or "" for oid in oids], stored, replaced


def ignore_in_git(root: Path, paths: list[str], scratch: Path | None = None) -> None:
    """Add ``/name`` for each path to the .gitignore beside it (one write per folder;
    the temporaries in ``scratch``, see ``atomic_write_bytes``)."""
    by_folder: dict[Path, list[str]] = {}
    for rel in paths:
        path = root / rel
        by_folder.setdefault(path.parent, []).append(ignore_pattern(path.name))
    for folder, lines in by_folder.items():
        ignore = folder / ".gitignore"
        try:
            # As bytes, split on LF only: a CR is part of a line (and of a file name).
            text = ignore.read_bytes().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            text = ""
        present = set(text.split("\n"))
        new = [line for line in dict.fromkeys(lines) if line not in present]
        if not new:
            continue
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_text(ignore, text + "".join(line + "\n" for line in new), scratch)
