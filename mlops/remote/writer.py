"""Storing fetched objects in the cache: each one appears complete or not at all.

A pull stores thousands of small objects, and on many filesystems creating a
file is the slowest part of it. Where Linux allows, the bytes go to an unnamed
file (``O_TMPFILE``) that is then linked in under the object's name: a single
directory update per object, and a process killed halfway leaves nothing
behind. Elsewhere a file is created read-only under a temporary name and
renamed, which is still half the system calls of ``Cache.add_bytes``.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType

from mlops.core.fsutil import write_all
from mlops.errors import CacheError
from mlops.storage.cache import Cache
from mlops.storage.hashing import DIR_SUFFIX


class ObjectWriter:
    """Writes verified bytes into a cache; use as a context manager."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._dir_fd: int | None = None
        if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                cache.root.mkdir(parents=True, exist_ok=True)
                self._dir_fd = os.open(cache.root, os.O_RDONLY | os.O_DIRECTORY)
        self._unnamed = self._dir_fd is not None

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def write(self, oid: str, data: bytes) -> None:
        """Store ``data`` (already checked to hash to ``oid``) and record it in the state cache."""
        cache = self.cache
        cache.prepare_folder(oid)  # the cache may be new: this also starts its generation
        target = cache.path(oid)
        try:
            st = self._write_unnamed(target, data) if self._unnamed else None
            if st is None:
                st = _write_renamed(cache.temp_path(), target, data)
        except OSError as exc:
            raise CacheError(f"cannot write to the cache folder {cache.root}: {exc}") from exc
        # Recorded so that checkout (and status) never hash this object again.
        cache.state.put(st, oid.removesuffix(DIR_SUFFIX))

    def _write_unnamed(self, target: str, data: bytes) -> os.stat_result | None:
        """Write through an unnamed file; None when the filesystem cannot (then fall back)."""
        try:
            fd = os.open(os.path.dirname(target), os.O_TMPFILE | os.O_WRONLY, 0o444)
        except OSError:
            self._unnamed = False  # not supported here: rename from now on
            return None
        try:
            write_all(fd, data)
            st = os.fstat(fd)
            try:
                # With a directory fd, os.link becomes linkat(AT_SYMLINK_FOLLOW), the only
                # way to give an unnamed file a name (the fd is ignored: the path is absolute).
                os.link(f"/proc/self/fd/{fd}", target, dst_dir_fd=self._dir_fd)
            except FileExistsError:
                pass  # stored meanwhile by another process: same bytes
            except OSError:
                self._unnamed = False
                return None
        finally:
            os.close(fd)
        return st


def _write_renamed(tmp: str, target: str, data: bytes) -> os.stat_result:
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            write_all(fd, data)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return st
