"""What every data command shares: the opened store, tracked targets, folder scans."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, TypeVar

from mlops.errors import CacheError, InputError
from mlops.gitutil import worktree_files
from mlops.parallel import Progress, map_shares
from mlops.repo import MLOPS_DIR, Repo
from mlops.storage.cache import Cache, is_executable
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes
from mlops.storage.links import Linker
from mlops.storage.manifest import Entry, Manifest, parse_manifest, validate_manifest
from mlops.storage.pointer import SUFFIX, Pointer, read_pointer
from mlops.storage.state import StateCache

T = TypeVar("T")


class Store:
    """The repository's cache, state cache and link policy, opened for one command."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.cache = Cache(repo.cache_dir, StateCache(repo.mlops_dir / "state.db"))

    @property
    def state(self) -> StateCache:
        return self.cache.state

    @cached_property
    def linker(self) -> Linker:
        # Read on first use: commands that only look (status, diff) skip the config.
        return Linker(self.repo.link_types())


def open_store(repo: Repo) -> Store:
    """Open the cache of ``repo``."""
    return Store(repo)


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
    pointer_files = [repo.root / name for name in worktree_files(repo.root, f"*{SUFFIX}")]
    targets = [
        Target(pf, read_pointer(pf, repo.root))
        for pf in pointer_files
        if pf.is_file() and MLOPS_DIR not in pf.relative_to(repo.root).parts[:1]
    ]
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
    return _walk([(str(folder), "")], _scanned_file)


def stat_lines(files: list[ScannedFile]) -> list[str]:
    """A line per file of its path, inode, mtime and size: an equal line, an unchanged file."""
    return [_stat_line(f.relpath, f.st) for f in files]


class LineScan(NamedTuple):
    """A folder's stat lines (as ``stat_lines``), and the relative paths of its files
    with what the lines leave out: executable ones, and (when asked for) ones with a
    single link, which share no inode with the cache."""

    lines: list[str]
    executable: set[str]
    single_link: set[str]


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
    # The order of ``_walk``: a folder's files, then its subfolders, last listed first.
    subfolders.reverse()

    def scan_share(share: Sequence[tuple[str, str]]) -> LineScan:
        visitor = _LineVisitor(links)
        for subfolder in share:
            visitor.result.lines.extend(_walk([subfolder], visitor.visit))
        return visitor.result

    if jobs == 1 or len(subfolders) < 2:
        shares = [scan_share(subfolders)]
    else:
        shares = map_shares(scan_share, subfolders, jobs)
    scan = top.result
    for share in shares:
        scan.lines.extend(share.lines)
        scan.executable.update(share.executable)
        scan.single_link.update(share.single_link)
    return scan


class _LineVisitor:
    """The ``visit`` of ``_walk`` that gives stat lines and notes what they leave out."""

    def __init__(self, links: bool) -> None:
        self.result = LineScan([], set(), set())
        self._links = links

    def visit(self, relpath: str, entry: os.DirEntry[str]) -> str:
        if entry.is_symlink():
            _check_symlink(entry.path)
        st = entry.stat()
        if st.st_mode & stat.S_IXUSR:
            self.result.executable.add(relpath)
        if self._links and st.st_nlink == 1:
            self.result.single_link.add(relpath)
        return _stat_line(relpath, st)


@dataclass
class FolderScan:
    """A scanned folder: the entries known from its last snapshot, and the files to
    look at (hash, and for ``add`` store and link)."""

    lines: list[str]  # every file's stat line, in scan order
    entries: list[Entry | None]  # known unchanged (and in place); None: one of ``files``
    files: list[ScannedFile]  # the files to look at, in scan order
    unchanged: dict[int, str]  # index in ``files`` -> hash, of those known unchanged

    @classmethod
    def of_files(cls, files: list[ScannedFile]) -> FolderScan:
        """Every file to be looked at, nothing known."""
        return cls(stat_lines(files), [None] * len(files), files, {})

    def completed(self, oids: list[str]) -> list[Entry]:
        """Every file's entry, in scan order, given the hashes of ``files``."""
        looked_at = iter(zip(self.files, oids, strict=True))
        return [entry or _entry(*next(looked_at)) for entry in self.entries]


def split_scan(folder: Path, scan: LineScan, before: dict[str, str]) -> FolderScan:
    """``scan`` of ``folder`` split by ``before`` (stat line -> hash at the folder's last
    snapshot): a file whose line is as then holds that content; the others get a stat
    of their own here, to be looked at. A file in ``scan.single_link`` is looked at
    too (with hardlinks, it no longer shares the cache's inode: relinked)."""
    result = FolderScan(scan.lines, [], [], {})
    top = str(folder)
    for i, line in enumerate(scan.lines):
        relpath, _, _, size = line.split("\0")
        oid = before.get(line)
        if oid is not None and relpath not in scan.single_link:
            result.entries.append(Entry(relpath, oid, int(size), relpath in scan.executable))
            continue
        abspath = f"{top}/{relpath}"
        st = os.stat(abspath)
        result.lines[i] = _stat_line(relpath, st)
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


def _scanned_file(relpath: str, entry: os.DirEntry[str]) -> ScannedFile:
    if entry.is_symlink():
        _check_symlink(entry.path)
    return ScannedFile(relpath, entry.path, entry.stat())


def _stat_line(relpath: str, st: os.stat_result) -> str:
    return f"{relpath}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}"


def fingerprint(lines: list[str]) -> str:
    """A digest of a folder's ``stat_lines``: equal means nothing changed.

    Taken in scan order, which is stable while a folder's entries are: a reordered
    scan only costs one slow status, never a wrong answer.
    """
    return hash_bytes("\n".join(lines).encode())


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
    if len(files) > 1:
        state.preload()
    known = [state.get(item.st) for item in files]
    # Only files the state cache does not know are read.
    unknown = [item for item, oid in zip(files, known, strict=True) if oid is None]
    hashed = iter(
        store.cache.map_files(
            lambda f: state.hash_unknown(f.abspath, f.st), unknown, jobs, progress, "hashing"
        )
    )
    return [_entry(item, oid or next(hashed)) for item, oid in zip(files, known, strict=True)]


def load_manifest(cache: Cache, oid: str, where: str) -> Manifest:
    """A folder's manifest from the cache, named after ``where`` when it is missing."""
    if not cache.exists(oid):
        raise CacheError(
            f"{where}: folder manifest {oid} is not in the cache: run `mlops pull` first"
        )
    return parse_manifest(cache.read_bytes(oid), oid)


def desired_entries(cache: Cache, target: Target, where: str) -> list[Entry]:
    """The files a target should have: its manifest's entries, or the one file."""
    pointer = target.pointer
    if pointer.oid.endswith(DIR_SUFFIX):
        manifest = load_manifest(cache, pointer.oid, where)
        validate_manifest(manifest, pointer.oid)
        return list(manifest.entries)
    return [Entry("", pointer.oid, pointer.size)]
