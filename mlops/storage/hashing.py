"""BLAKE3 hashing of bytes and files."""

from __future__ import annotations

import os
import re

# Imported here, not per call: hashing 20,000 small files makes the import statement's
# lookup a measurable share of the work, and nearly every command hashes something.
from blake3 import blake3

ALGORITHM = "blake3"
DIR_SUFFIX = ".dir"
# Files from this size on are hashed memory-mapped on every core.
MMAP_THRESHOLD = 8 << 20
_OID = re.compile(r"[0-9a-f]{64}(?:\.dir)?")

# blake3 hashes big files on a pool of threads, which a forked worker process does not
# inherit: waiting on it there would never end. Workers hash on their own thread.
_max_threads = blake3.AUTO


def _single_threaded() -> None:
    global _max_threads
    _max_threads = 1


os.register_at_fork(after_in_child=_single_threaded)


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
            hasher = blake3(max_threads=_max_threads)
            hasher.update_mmap(path)
        else:
            # One read takes a small file whole (a regular file reads short only at its end).
            data = os.read(fd, size + 1)
            hasher = blake3(data)
            if len(data) > size:  # it grew since it was listed: take the rest too
                while chunk := os.read(fd, 1 << 16):
                    hasher.update(chunk)
        return hasher.hexdigest(), os.fstat(fd)
    finally:
        os.close(fd)


def is_valid_oid(oid: object) -> bool:
    """Whether ``oid`` looks like an object id: 64 lowercase hex digits, maybe ``.dir``."""
    return isinstance(oid, str) and _OID.fullmatch(oid) is not None
