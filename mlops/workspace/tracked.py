"""What every data command shares: tracked targets, folder scans, hashing them."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from mlops.core.git import worktree_files
from mlops.core.parallel import Progress, map_shares
from mlops.core.repo import MLOPS_DIR, Repo
from mlops.errors import InputError
from mlops.storage.cache import Cache, is_executable
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes
from mlops.storage.manifest import Entry
from mlops.storage.paths import unsafe_reason
from mlops.storage.pointer import SUFFIX, Pointer, read_pointer
from mlops.storage.state import FolderRecord, GroupUpdate, StateCache, group_text
from mlops.storage.store import Store, load_sound_manifest

if TYPE_CHECKING:
    from mlops.workspace.fsmonitor import Monitor

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A tracked path: its pointer file, the pointer, and where the data lives."""

    pointer_file: Path
    pointer: Pointer

    @property
    def data_path(self) -> Path:
        return self.pointer_file.parent / self.pointer.path

    def relpath(self, repo: Repo) -> str:
        return repo.relpath(self.data_path)


class ScannedFile(NamedTuple):
    """A file found in the workspace."""

    relpath: str
    abspath: str
    st: os.stat_result


def find_targets(
    repo: Repo, paths: list[str] | None = None, extra: Sequence[Target] = ()
) -> list[Target]:
    """Tracked paths in the workspace, and ``extra`` ones (pipeline outputs), optionally
    limited to ``paths`` (data or pointer paths)."""
    names = worktree_files(repo.root, f"*{SUFFIX}")
    targets = [
        Target(repo.root / name, read_pointer(repo.root / name, repo.root))
        for name in names
        if not name.startswith(f"{MLOPS_DIR}/") and (repo.root / name).is_file()
    ]
    for target in targets:
        # The pointer's own name is checked as it is read; its folder here.
        folder = target.pointer_file.parent.relative_to(repo.root).as_posix()
        if folder != "." and (reason := unsafe_reason(folder)) is not None:
            raise InputError(f"{repo.relpath(target.pointer_file)}: refused: its folder {reason}")
    targets += extra
    if not paths:
        return targets
    chosen: list[Target] = []
    for raw in paths:
        wanted = Path(os.path.abspath(raw))
        matches = [
            t
            for t in targets
            if wanted in (t.data_path, t.pointer_file)
            or t.data_path in wanted.parents
            or wanted in t.data_path.parents
        ]
        if not matches:
            raise InputError(f"{raw}: not tracked by mlops (no {Path(raw).name}{SUFFIX} found)")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def scan_folder(folder: Path) -> list[ScannedFile]:
    """Every file below ``folder`` with its stat; symlinks to files are followed."""
    return [scanned_file(relpath, entry) for relpath, entry in list_files(folder)]


def list_files(folder: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """Every file below ``folder`` (relative path, directory entry), in scan order, with
    no stat of its own: the file's stat can be taken later, elsewhere (``scanned_file``).
    A symbolic link is checked here: it must lead to a file."""
    return _walk([(str(folder), "")], _listed_file)


def scanned_file(relpath: str, entry: os.DirEntry[str]) -> ScannedFile:
    """A file of ``list_files`` with its stat (through a symbolic link)."""
    return ScannedFile(relpath, entry.path, entry.stat())


def stat_lines(files: list[ScannedFile]) -> list[str]:
    """A line per file of its path, inode, mtime, size and executable bit: an equal line,
    an unchanged file."""
    return [stat_line(f.relpath, f.st) for f in files]


class LineScan(NamedTuple):
    """A folder's stat lines (as ``stat_lines``), and the relative paths of its files
    with what the lines leave out: (when asked for) the ones with a single link, which
    share no inode with the cache. ``groups``: the lines' groups (see ``line_groups``)
    in scan order, each with its number of lines."""

    lines: list[str]
    single_link: set[str]
    groups: list[tuple[str, int]]


def file_monitor(repo: Repo) -> Monitor | None:
    """The file-system monitor's client when ``core.fsmonitor`` is on, else None."""
    if not repo.config().get("core", {}).get("fsmonitor"):
        return None
    from mlops.workspace.fsmonitor import Monitor

    return Monitor(repo.root)


def changed_inside(changed: list[str], rel: str) -> list[str] | None:
    """The paths among ``changed`` (the monitor's, relative to the work tree) inside the
    folder ``rel``, relative to it; None when the folder itself, or a folder above it,
    was made, removed or replaced: nothing recorded of it can be trusted then."""
    inside: list[str] = []
    for path in changed:
        if path == rel or rel.startswith(path + "/"):
            return None
        if path.startswith(rel + "/"):
            inside.append(path[len(rel) + 1 :])
    return inside


def groups_touched(paths: list[str]) -> set[str]:
    """The groups a change of ``paths`` (inside a folder) may have changed: an entry at
    the top may be a file of the group "" or a group of its own."""
    return {group_of(p) for p in paths} | {p for p in paths if "/" not in p}


def group_of(relpath: str) -> str:
    """The group of a folder's file: its top-level subfolder ("" for a file at the top).

    A folder's stat lines are fingerprinted by group, so that after a change only the
    groups whose lines changed are compared file by file (``status``)."""
    head, sep, _ = relpath.partition("/")
    return head if sep else ""


def line_groups(lines: list[str]) -> list[tuple[str, int]]:
    """The groups of ``lines`` (in scan order, where each group's lines are together)."""
    groups: list[tuple[str, int]] = []
    for line in lines:
        name = group_of(line[: line.index("\0")])
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + 1)
        else:
            groups.append((name, 1))
    return groups


def group_fingerprints(lines: list[str], groups: list[tuple[str, int]]) -> dict[str, str]:
    """Each group's digest of its stat lines: equal means none of its files changed."""
    found: dict[str, str] = {}
    start = 0
    for name, count in groups:
        found[name] = lines_fingerprint("\n".join(lines[start : start + count]))
        start += count
    return found


def lines_fingerprint(lines: str) -> str:
    """A group's fingerprint from its stat lines joined by line breaks."""
    return hash_bytes(lines.encode())


def remember_folder(
    state: StateCache,
    rel: str,
    oid: str,
    generation: str,
    lines: list[str],
    groups: list[tuple[str, int]],
    oids: list[str],
    differ: dict[str, list[tuple[str, str]]] | None = None,
) -> None:
    """Record that folder ``rel`` holds snapshot ``oid`` while its files have ``lines``
    (their ``groups``, and each file's hash in ``oids``).

    ``differ``: the groups whose files do not hold the snapshot's content, each with
    the snapshot's (path, hash) pairs. Such a group is recorded with those under a stat
    no file has, so that it is compared again every time, while the others are known
    from their stats (a folder being edited stays quick to look at)."""
    remember_groups(state, rel, oid, generation, group_updates(lines, groups, oids, differ))


def group_updates(
    lines: list[str],
    groups: list[tuple[str, int]],
    oids: list[str],
    differ: dict[str, list[tuple[str, str]]] | None = None,
) -> dict[str, tuple[str, str]]:
    """Each group's (fingerprint, ``group_text``) for ``remember_groups``: see
    ``remember_folder``."""
    differ = differ or {}
    fps = group_fingerprints(lines, groups)
    updates: dict[str, tuple[str, str]] = {
        name: (fps[name], group_text(lines[part], oids[part]))
        for name, part in group_slices(groups).items()
        if name not in differ
    }
    for name, wanted in differ.items():
        placeholders = [f"{path}\0-\0-\0-\0-" for path, _ in wanted]
        updates[name] = (DIFFERS, group_text(placeholders, [h for _, h in wanted]))
    return updates


def remember_groups(
    state: StateCache, rel: str, oid: str, generation: str, groups: dict[str, tuple[str, str]]
) -> None:
    """``remember_folder`` of every group given as (fingerprint, ``group_text``)."""
    fps = {name: fp for name, (fp, _) in groups.items()}
    updates: dict[str, GroupUpdate] = dict(groups)
    state.put_folder(rel, FolderRecord(fingerprint(fps), oid, generation), updates)


# The fingerprint of a group whose files differ from the snapshot: no scan gives it.
DIFFERS = "differs"


def group_slices(groups: list[tuple[str, int]]) -> dict[str, slice]:
    """Where each group's lines are in the scan."""
    found: dict[str, slice] = {}
    start = 0
    for name, count in groups:
        found[name] = slice(start, start + count)
        start += count
    return found


def scan_lines(folder: Path, jobs: int | None = None, links: bool = False) -> LineScan:
    """``stat_lines(scan_folder(folder))``, line for line, without keeping each file's stat.

    What ``status`` needs to see that a folder is unchanged, and ``add`` to see which
    files changed since it last stored the folder. With ``jobs`` other than 1, the
    subfolders are scanned in worker processes (see ``map_shares``), which send back
    strings: a stat result pickles dozens of times slower. ``single_link`` is filled only
    with ``links``.
    """
    with os.scandir(folder) as listing:
        entries = list(listing)
    top = _LineVisitor(links)
    subfolders: list[tuple[str, str]] = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subfolders.append((entry.path, f"{entry.name}/"))
        else:
            top.result.lines.append(top.visit(entry.name, entry))
    if top.result.lines:
        top.result.groups.append(("", len(top.result.lines)))
    # The order of ``_walk``: a folder's files, then its subfolders, last listed first.
    subfolders.reverse()

    def scan_share(share: Sequence[tuple[str, str]]) -> LineScan:
        visitor = _LineVisitor(links)
        for subfolder in share:
            found = _walk([subfolder], visitor.visit)
            if found:
                visitor.result.lines.extend(found)
                visitor.result.groups.append((subfolder[1][:-1], len(found)))
        return visitor.result

    if jobs == 1 or len(subfolders) < 2:
        shares = [scan_share(subfolders)]
    else:
        shares = map_shares(scan_share, subfolders, jobs)
    scan = top.result
    for share in shares:
        scan.lines.extend(share.lines)
        scan.single_link.update(share.single_link)
        scan.groups.extend(share.groups)
    return scan


def scan_groups(folder: Path, names: Iterable[str], links: bool = False) -> LineScan:
    """The stat lines of only the groups ``names`` of ``folder``, as ``scan_lines`` gives
    them. A name that is not a subfolder (any more) gives no group: it is then an entry
    at the top, which the group "" holds."""
    visitor = _LineVisitor(links)
    result = visitor.result
    for name in sorted(set(names)):
        if name == "":
            with os.scandir(folder) as listing:
                top = [e for e in listing if not e.is_dir(follow_symlinks=False)]
            lines = [visitor.visit(e.name, e) for e in top]
        else:
            sub = folder / name
            if sub.is_symlink() or not sub.is_dir():
                continue
            lines = _walk([(str(sub), f"{name}/")], visitor.visit)
        if lines:
            result.lines.extend(lines)
            result.groups.append((name, len(lines)))
    return result


class _LineVisitor:
    """The ``visit`` of ``_walk`` that gives stat lines and notes what they leave out."""

    def __init__(self, links: bool) -> None:
        self.result = LineScan([], set(), [])
        self._links = links

    def visit(self, relpath: str, entry: os.DirEntry[str]) -> str:
        if entry.is_symlink():
            _check_symlink(entry.path)
        st = entry.stat()
        if self._links and st.st_nlink == 1:
            self.result.single_link.add(relpath)
        return stat_line(relpath, st)


@dataclass
class FolderScan:
    """A scanned folder: the entries known from its last snapshot, and the files to
    look at (hash, and for ``add`` store and link)."""

    lines: list[str]  # every file's stat line, in scan order
    groups: list[tuple[str, int]]  # the lines' groups (``line_groups``)
    entries: list[Entry | None]  # known unchanged (and in place); None: one of ``files``
    files: list[ScannedFile]  # the files to look at, in scan order
    unchanged: dict[int, str]  # index in ``files`` -> hash, of those known unchanged

    @classmethod
    def of_files(cls, files: list[ScannedFile]) -> FolderScan:
        """Every file to be looked at, nothing known."""
        lines = stat_lines(files)
        return cls(lines, line_groups(lines), [None] * len(files), files, {})

    def completed(self, oids: list[str]) -> list[Entry]:
        """Every file's entry, in scan order, given the hashes of ``files``."""
        if len(self.files) == len(self.entries):
            # Every file looked at (a first add): one pass, without a call per file.
            return [
                Entry(f.relpath, oid, f.st.st_size, f.st.st_mode & stat.S_IXUSR != 0)
                for f, oid in zip(self.files, oids, strict=True)
            ]
        looked_at = iter(zip(self.files, oids, strict=True))
        return [entry or _entry(*next(looked_at)) for entry in self.entries]


def split_scan(folder: Path, scan: LineScan, before: dict[str, str]) -> FolderScan:
    """``scan`` of ``folder`` split by ``before`` (stat line -> hash at the folder's last
    snapshot): a file whose line is as then holds that content; the others get a stat
    of their own here, to be looked at. A file in ``scan.single_link`` is looked at
    too (with hardlinks, it no longer shares the cache's inode: relinked)."""
    result = FolderScan(scan.lines, scan.groups, [], [], {})
    top = str(folder)
    for i, line in enumerate(scan.lines):
        relpath, _, _, size, mode = line.split("\0")
        oid = before.get(line)
        if oid is not None and relpath not in scan.single_link:
            result.entries.append(Entry(relpath, oid, int(size), mode == _EXECUTABLE))
            continue
        abspath = f"{top}/{relpath}"
        st = os.stat(abspath)
        result.lines[i] = stat_line(relpath, st)
        if oid is not None and result.lines[i] == line:
            result.unchanged[len(result.files)] = oid
        result.files.append(ScannedFile(relpath, abspath, st))
        result.entries.append(None)
    return result


def _entry(f: ScannedFile, oid: str) -> Entry:
    return Entry(f.relpath, oid, f.st.st_size, is_executable(f.st))


def _walk(stack: list[tuple[str, str]], visit: Callable[[str, os.DirEntry[str]], T]) -> list[T]:
    """``visit(relpath, entry)`` of every file below the (folder, relpath prefix) pairs of
    ``stack``, depth first: a folder's files, then its subfolders, last listed first."""
    found: list[T] = []
    while stack:
        path, prefix = stack.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
                    continue
                found.append(visit(prefix + entry.name, entry))
    return found


def _listed_file(relpath: str, entry: os.DirEntry[str]) -> tuple[str, os.DirEntry[str]]:
    if entry.is_symlink():
        _check_symlink(entry.path)
    return relpath, entry


def stat_line(relpath: str, st: os.stat_result) -> str:
    """A file's line of ``stat_lines``."""
    # The executable bit too: a chmod changes no mtime, and a snapshot records the bit.
    mode = _EXECUTABLE if st.st_mode & stat.S_IXUSR else _PLAIN
    return f"{relpath}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}\0{mode}"


_EXECUTABLE, _PLAIN = "x", "-"


def fingerprint(groups: dict[str, str]) -> str:
    """A folder's digest from its ``group_fingerprints``: equal means nothing changed.

    Each group's lines are taken in scan order, which is stable while a folder's
    entries are: a reordered scan only costs one slow status, never a wrong answer.
    """
    return hash_bytes("\n".join(f"{name}\0{fp}" for name, fp in sorted(groups.items())).encode())


def _check_symlink(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{path}: broken symbolic link")
    if os.path.isdir(path):
        raise InputError(
            f"{path}: symbolic link to a folder; mlops stores files only "
            "(add the folder it points to instead)"
        )


def hash_files(
    store: Store, files: list[ScannedFile], jobs: int | None, progress: Progress | None
) -> list[Entry]:
    """Manifest entries for scanned files, hashing only what the state cache does not know."""
    state = store.state
    known = state.get_many([item.st for item in files])
    # Only files the state cache does not know are read.
    unknown = [item for item, oid in zip(files, known, strict=True) if oid is None]
    hashed = iter(
        store.cache.map_files(
            lambda f: state.hash_unknown(f.abspath, f.st), unknown, jobs, progress, "hashing"
        )
    )
    return [_entry(item, oid or next(hashed)) for item, oid in zip(files, known, strict=True)]


def desired_entries(cache: Cache, target: Target, where: str) -> list[Entry]:
    """The files a target should have: its manifest's entries, or the one file."""
    pointer = target.pointer
    if pointer.oid.endswith(DIR_SUFFIX):
        return list(load_sound_manifest(cache, pointer.oid, where).entries)
    return [Entry("", pointer.oid, pointer.size)]
