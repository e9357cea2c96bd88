"""BLAKE3 hashing of bytes and files."""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterable

# Imported here, not per call: hashing 20,000 small files makes the import statement's
# lookup a measurable share of the work, and nearly every command hashes something.
from blake3 import blake3

from mlops.core.fsutil import write_all

ALGORITHM = "blake3"
DIR_SUFFIX = ".dir"
# Files from this size on are hashed memory-mapped on every core.
MMAP_THRESHOLD = 8 << 20
_OID = re.compile(r"[0-9a-f]{64}(?:\.dir)?")

# blake3 hashes big files on a pool of threads, which a forked worker process does not
# inherit (nor the thread of ``hash_early``): waiting on them there would never end.
# Workers hash on their own thread.
_max_threads = blake3.AUTO


def _in_forked_child() -> None:
    global _max_threads
    _max_threads = 1
    _early.clear()


os.register_at_fork(after_in_child=_in_forked_child)


def hash_bytes(data: bytes) -> str:
    """The hex BLAKE3 digest of ``data``."""
    return blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """The hex BLAKE3 digest of a file's bytes."""
    return hash_file_stat(path, size)[0]


def hash_file_stat(
    path: str | os.PathLike[str], size: int | None = None
) -> tuple[str, os.stat_result]:
    """The file's digest and its stat taken after reading (to detect a change meanwhile)."""
    # Raw descriptors: for the many small files of a data folder, the buffered
    # file object costs more than the read itself.
    fd = os.open(path, os.O_RDONLY)
    try:
        if size is None:
            size = os.fstat(fd).st_size
        if size >= MMAP_THRESHOLD:
            return _hashed_early(fd) or _hash_mapped(path, fd)
        # One read takes a small file whole (a regular file reads short only at its end).
        data = os.read(fd, size + 1)
        hasher = blake3(data)
        if len(data) > size:  # it grew since it was listed: take the rest too
            while chunk := os.read(fd, 1 << 16):
                hasher.update(chunk)
        return hasher.hexdigest(), os.fstat(fd)
    finally:
        os.close(fd)


def copy_hashed(src: str, dst: str) -> str:
    """Copy ``src`` to the new file ``dst`` and return the digest of the bytes ``dst`` got.

    A small file is read once, hashed and written from memory. A big one is copied by
    the kernel (``copy_file_range``, no trip through this process), then hashed as
    written, memory-mapped on every core: measured, that beats hashing chunks on their
    way through this process by several times.
    """
    fd = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < MMAP_THRESHOLD:
            out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                data = os.read(fd, size + 1)
                hasher = blake3(data)
                write_all(out, data)
                while chunk := os.read(fd, 1 << 20):  # it grew since: the rest too
                    hasher.update(chunk)
                    write_all(out, chunk)
                return hasher.hexdigest()
            finally:
                os.close(out)
    finally:
        os.close(fd)
    import shutil

    shutil.copyfile(src, dst)
    return hash_file(dst)


class _Pending:
    """A digest being computed on another thread; ``result`` waits for it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: tuple[str, os.stat_result] | None = None
        self._error: BaseException | None = None

    def run(self, path: str) -> None:
        try:
            self._value = _hash_mapped_path(path)
        except BaseException as exc:  # handed to the thread that waits for it
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> tuple[str, os.stat_result]:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


# (device, inode) -> (mtime_ns, size) when started, and the digest and stat to come.
_early: dict[tuple[int, int], tuple[int, int, _Pending]] = {}


def hash_early(paths: Iterable[str]) -> None:
    """Start hashing those of ``paths`` that are big regular files, in the background.

    For ``mlops add``, before the command line is parsed: reading and hashing a big
    file then overlaps the start-up of the command. ``hash_file_stat`` takes a result
    only for the very file (same inode, mtime and size) it was computed from. The
    thread does not hold up the exit: a command that fails on its input ends at once.
    """
    started: list[tuple[str, _Pending]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue  # not a file name (an option's value, say): nothing to start
        if not stat.S_ISREG(st.st_mode) or st.st_size < MMAP_THRESHOLD:
            continue
        pending = _Pending()
        started.append((path, pending))
        _early[(st.st_dev, st.st_ino)] = (st.st_mtime_ns, st.st_size, pending)
    if started:
        # One file after another: each hash already runs on every core.
        threading.Thread(
            target=_run_in_turn, args=(started,), name="mlops-hash", daemon=True
        ).start()


def _run_in_turn(started: list[tuple[str, _Pending]]) -> None:
    for path, pending in started:
        pending.run(path)


def _hash_mapped(path: str | os.PathLike[str], fd: int) -> tuple[str, os.stat_result]:
    hasher = blake3(max_threads=_max_threads)
    hasher.update_mmap(path)
    return hasher.hexdigest(), os.fstat(fd)


def _hash_mapped_path(path: str) -> tuple[str, os.stat_result]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return _hash_mapped(path, fd)
    finally:
        os.close(fd)


def _hashed_early(fd: int) -> tuple[str, os.stat_result] | None:
    st = os.fstat(fd)
    entry = _early.pop((st.st_dev, st.st_ino), None)
    if entry is None or entry[:2] != (st.st_mtime_ns, st.st_size):
        return None
    try:
        digest, after = entry[2].result()
    except OSError:
        return None  # hashed again in the foreground, which reports what goes wrong
    if (after.st_mtime_ns, after.st_size) != (st.st_mtime_ns, st.st_size):
        return None  # changed while it was read
    return digest, after


def is_valid_oid(oid: object) -> bool:
    """Whether ``oid`` looks like an object id: 64 lowercase hex digits, maybe ``.dir``."""
    return isinstance(oid, str) and _OID.fullmatch(oid) is not None
