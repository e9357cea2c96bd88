"""The local object store: ``cache/<2 hex>/<rest>``, written atomically, read-only."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from mlops.core.fsutil import (
    atomic_write_text,
    make_read_only,
    sweep_temporaries,
    temp_path,
)
from mlops.core.parallel import Progress, map_shares, parallel_map
from mlops.errors import CacheError
from mlops.storage.hashing import DIR_SUFFIX, copy_hashed, hash_bytes, hash_file
from mlops.storage.links import SHARED, Linker
from mlops.storage.state import StateCache

T = TypeVar("T")
R = TypeVar("R")

_GENERATION = ".generation"
# Where the cache's own temporaries are made before a rename makes them objects: one
# folder, so that those of a killed process are swept by one listing.
_TMP = "tmp"
# From this many files to hash, link or copy, worker processes beat the cost of forking.
SHARE_MIN_FILES = 1000
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class Soundness(IntEnum):
    """What ``Cache.soundness`` found of an object."""

    SOUND = 0
    MISSING = 1
    CORRUPT = 2  # its bytes no longer hash to its id


class Cache:
    """A content-addressed object store in a local folder."""

    def __init__(
        self,
        root: Path,
        state: StateCache,
        scratch: Path | None = None,
        aside: Path | None = None,
    ) -> None:
        """``scratch``: a folder of mlops's own on the work tree's file system, where a
        file placed into the workspace is made before its rename (see ``place``).
        ``aside``: where corrupt objects are moved (``set_aside``)."""
        self.root = root
        self.state = state
        self.scratch = scratch
        self.aside = aside
        self._root = str(root)
        self._made: set[str] = set()
        self._generation_checked = False
        self._temp_folders: set[str] = set()

    def sweep(self) -> int:
        """Delete the temporaries a killed process left in the cache's folder and in the
        scratch folder; return how many. Cheap (a listing of each): every command opening
        the store does it."""
        swept = sweep_temporaries(f"{self._root}/{_TMP}")
        return swept + (sweep_temporaries(self.scratch) if self.scratch else 0)

    def set_aside(self, oid: str) -> None:
        """Move a corrupt object out of the cache (into ``aside``), so that nothing uses
        it again and ``status`` reports it missing and known corrupt."""
        if self.aside is None:
            raise CacheError(f"cache object {oid} is corrupt")
        self.aside.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(oid), self.aside / oid)
        self.bump_generation()

    def is_set_aside(self, oid: str) -> bool:
        """Whether ``oid`` was found corrupt and moved aside."""
        return self.aside is not None and (self.aside / oid).exists()

    def temp_path(self) -> str:
        """A temporary path in the cache's own folder, from which ``adopt`` renames."""
        return self._temp_in(f"{self._root}/{_TMP}")

    def _temp_in(self, folder: str) -> str:
        if folder not in self._temp_folders:
            os.makedirs(folder, exist_ok=True)
            self._temp_folders.add(folder)
        return temp_path(folder)

    def path(self, oid: str) -> str:
        """Where the object ``oid`` lives (it may not exist)."""
        return f"{self._root}/{oid[:2]}/{oid[2:]}"

    def exists(self, oid: str) -> bool:
        """Whether the object is present."""
        return os.path.exists(self.path(oid))

    def existing(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` present in the cache, listing folders when that is cheaper."""
        wanted = set(oids)
        if len(wanted) < 2000:
            return {oid for oid in wanted if self.exists(oid)}
        present: set[str] = set()
        for prefix in {oid[:2] for oid in wanted}:
            with contextlib.suppress(FileNotFoundError):
                present.update(prefix + name for name in os.listdir(f"{self._root}/{prefix}"))
        return wanted & present

    def iter_objects(self) -> Iterator[str]:
        """Every object id in the cache."""
        if not self.root.is_dir():
            return
        for prefix in sorted(os.listdir(self.root)):
            folder = self.root / prefix
            if len(prefix) != 2 or not folder.is_dir():
                continue
            for name in os.listdir(folder):
                if not name.startswith("."):
                    yield prefix + name

    def prepare_folder(self, oid: str) -> None:
        """Make the fan-out folder of ``oid`` (and start the cache's generation if new)."""
        prefix = oid[:2]
        if prefix in self._made:
            return
        try:
            os.makedirs(f"{self._root}/{prefix}", exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot write to the cache folder {self.root}: {exc.strerror}"
            ) from exc
        self.ensure_generation()
        self._made.add(prefix)

    def ensure_generation(self) -> None:
        """Start the generation token of a new cache (once per process is enough)."""
        if not self._generation_checked:
            if not self.generation():
                self.bump_generation()
            self._generation_checked = True

    def adopt(self, tmp: str, oid: str) -> None:
        """Make a fully written temporary (from ``temp_path``) the object ``oid``."""
        make_read_only(tmp)
        target = self.path(oid)
        os.replace(tmp, target)
        self.state.put(os.stat(target), oid.removesuffix(DIR_SUFFIX))

    def add_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store ``data``; return its id (``suffix`` marks manifests as ``.dir``)."""
        oid = hash_bytes(data) + suffix
        if self.exists(oid):
            return oid
        self.prepare_folder(oid)
        tmp = self.temp_path()
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            self.adopt(tmp, oid)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise CacheError(f"cannot write to the cache folder {self.root}: {exc}") from exc
        return oid

    def read_bytes(self, oid: str) -> bytes:
        """The bytes of an object; a missing object is a clear error."""
        try:
            with open(self.path(oid), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise CacheError(
                f"object {oid} is not in the cache: run `mlops fetch` or `mlops pull`"
            ) from None

    def add_file(
        self, src: str, oid: str, st: os.stat_result, linker: Linker, present: bool
    ) -> tuple[bool, bool]:
        """Store the workspace file ``src`` (hash ``oid``, stat ``st``) and link it back.

        ``linker`` must have settled its link type (``Linker.probe``). With a
        shared link type the workspace file ends up sharing the cache's bytes,
        read-only; with copy or reflink it is left as it is. Returns whether a
        new object was stored, and whether the workspace file was replaced (by a
        link to an object stored before).
        """
        kind = linker.chosen
        target = self.path(oid)
        stored = False
        try:
            if not present:
                self.prepare_folder(oid)
                present = self._store(src, oid, target, st, linker)
                stored = not present or kind == "symlink"
            if present and kind in SHARED and not _is_link_to(src, target, kind):
                self.place(oid, src, linker, bool(st.st_mode & stat.S_IXUSR))
                return stored, True
            return stored, False
        except PermissionError as exc:
            raise CacheError(
                f"cannot write to the cache folder {self.root}: {exc.strerror}"
            ) from exc

    def _store(self, src: str, oid: str, target: str, st: os.stat_result, linker: Linker) -> bool:
        """Copy or link ``src`` in as ``oid`` at ``target``; True if it turned out to be there."""
        if linker.chosen == "hardlink":
            # A new name for a complete file appears atomically: no temporary needed.
            try:
                os.link(src, target)
            except FileExistsError:
                return True
            os.chmod(target, stat.S_IMODE(st.st_mode) & ~_WRITE_BITS)
            self.state.put(st, oid)  # same inode; chmod leaves mtime alone
            return False
        if os.path.exists(target):
            return True
        tmp = self.temp_path()
        try:
            linker.place(src, tmp, storing=True)
            self.adopt(tmp, oid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return linker.chosen == "symlink"  # the workspace file still needs its link

    def place(self, oid: str, dst: str, linker: Linker, executable: bool = False) -> str:
        """Put object ``oid`` at workspace path ``dst``, atomically replacing what is there.

        Returns the link type used; for shared types the workspace file has the
        object's inode, which the state cache already knows.
        """
        src = self.path(oid)
        if linker.chosen in SHARED:
            try:  # a link to a complete object appears atomically
                return linker.place(src, dst)
            except FileExistsError:
                pass
        # Made in the scratch folder, so that a process killed here leaves no temporary
        # among the user's files (for the next ``add`` to record).
        tmp = self._temp_in(str(self.scratch)) if self.scratch else _beside(dst)
        try:
            if linker.chosen == "copy":
                # The copy's bytes are hashed (``copy_hashed``): an object corrupted in
                # a way that kept its size and mtime (which the state cache trusts) is
                # refused here, not placed.
                if copy_hashed(src, tmp) != oid.removesuffix(DIR_SUFFIX):
                    self.set_aside(oid)
                    raise CacheError(
                        f"cache object {oid} is corrupt (its bytes no longer match its hash) "
                        f"and was set aside; {dst} was left as it was; run `mlops pull`"
                    )
                kind = "copy"
            else:
                kind = linker.place(src, tmp)
            if kind not in SHARED:
                os.chmod(tmp, (0o777 if executable else 0o666) & ~_UMASK)
            os.replace(tmp, dst)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if exc.errno != errno.EXDEV or self.scratch is None:
                raise
            self.scratch = None  # the work tree is on another file system: place beside
            return self.place(oid, dst, linker, executable)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return kind

    def generation(self) -> str:
        """A token replaced whenever objects are deleted, so "all were present" can be trusted.

        Empty when unknown (say, the cache folder was wiped): nothing matches it then.
        """
        try:
            return (self.root / _GENERATION).read_text().strip()
        except FileNotFoundError:
            return ""

    def bump_generation(self) -> None:
        """Record that objects may have been removed (``gc``, ``fsck``, a new cache)."""
        import uuid

        atomic_write_text(self.root / _GENERATION, uuid.uuid4().hex, self.root / _TMP)

    def verify(self, oid: str) -> bool:
        """Whether the object's bytes still hash to its id (trusting an unchanged stat)."""
        return self.soundness([oid]) == [Soundness.SOUND]

    def soundness(
        self, oids: list[str], jobs: int | None = None, progress: Progress | None = None
    ) -> list[Soundness]:
        """Whether each of ``oids`` is present with bytes that match its id.

        An object whose stat the state cache knows is trusted (one ``stat``);
        only the others are read and hashed.
        """
        state = self.state

        def judged(oid: str, st: os.stat_result | None, known: str | None) -> Soundness:
            if st is None:
                return Soundness.MISSING
            digest = oid.removesuffix(DIR_SUFFIX)
            if known is not None:
                return Soundness.SOUND if known == digest else Soundness.CORRUPT
            if hash_file(self.path(oid), st.st_size) != digest:
                return Soundness.CORRUPT
            state.put(st, digest)
            return Soundness.SOUND

        def judge_share(share: Sequence[str]) -> list[Soundness]:
            stats = [_stat_or_none(self.path(oid)) for oid in share]
            # Each worker asks about its own share's inodes: reading every row first, in
            # the parent, cost as much as all the stats (0.44 s for 300,000 objects).
            known = iter(state.get_many([st for st in stats if st is not None], preload=False))
            return [
                judged(oid, st, None if st is None else next(known))
                for oid, st in zip(share, stats, strict=True)
            ]

        if len(oids) >= SHARE_MIN_FILES:
            return self.map_shares(judge_share, oids, jobs, progress, "verifying")
        if len(oids) > 1:
            state.preload()

        def judged_alone(oid: str) -> Soundness:
            st = _stat_or_none(self.path(oid))
            return judged(oid, st, None if st is None else state.get(st))

        return self.map_files(judged_alone, oids, jobs, progress, "verifying")

    def map_files(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        jobs: int | None,
        progress: Progress | None,
        task: str,
    ) -> list[R]:
        """``[fn(item) for item in items]`` for per-file work (hash, link, copy), in order.

        Many files go to one worker process per core (see ``map_shares``), which send
        back what the state cache learnt; a few go to the thread pool.
        """
        if len(items) < SHARE_MIN_FILES:
            return parallel_map(fn, items, jobs, progress, task)
        return self.map_shares(
            lambda share: [fn(item) for item in share], items, jobs, progress, task
        )

    def map_shares(
        self,
        fn: Callable[[Sequence[T]], list[R]],
        items: Sequence[T],
        jobs: int | None,
        progress: Progress | None,
        task: str,
    ) -> list[R]:
        """The results of ``fn`` over contiguous shares of ``items``, one worker process
        per core (see ``core.parallel.map_shares``), in order; the rows the workers' state
        caches learnt come back to this one."""
        state = self.state
        self.ensure_generation()  # once, here, rather than once in every worker
        results: list[R] = []
        mark = state.pending_mark()
        for done, rows in map_shares(
            lambda share: (fn(share), state.pending_rows(mark)), items, jobs, progress, task
        ):
            results.extend(done)
            state.put_rows(rows)
        return results

    def rehash(self, oid: str) -> bool:
        """Whether the object's bytes hash to its id, reading every byte."""
        try:
            return hash_file(self.path(oid)) == oid.removesuffix(DIR_SUFFIX)
        except FileNotFoundError:
            return False


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _beside(dst: str) -> str:
    return temp_path(os.path.dirname(dst) or ".", hidden=True)


def _is_link_to(path: str, target: str, kind: str) -> bool:
    try:
        if kind == "symlink":
            return os.path.islink(path) and os.readlink(path) == os.path.abspath(target)
        return os.lstat(path).st_ino == os.stat(target).st_ino
    except FileNotFoundError:
        return False


# The process umask, read once (reading it means setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def is_executable(st: os.stat_result) -> bool:
    """Whether the owner may execute the file."""
    return bool(st.st_mode & stat.S_IXUSR)
