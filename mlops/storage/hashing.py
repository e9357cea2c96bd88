"""BLAKE3 hashing of bytes and files."""

from __future__ import annotations

import os

ALGORITHM = "blake3"
DIR_SUFFIX = ".dir"
# Files above this size are hashed memory-mapped on every core.
_MMAP_THRESHOLD = 8 << 20


def hash_bytes(data: bytes) -> str:
    """The hex BLAKE3 digest of ``data``."""
    from blake3 import blake3

    return blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """The hex BLAKE3 digest of a file's bytes."""
    from blake3 import blake3

    if size is None:
        size = os.stat(path).st_size
    if size >= _MMAP_THRESHOLD:
        hasher = blake3(max_threads=blake3.AUTO)
        hasher.update_mmap(path)
        return hasher.hexdigest()
    with open(path, "rb") as handle:
        return blake3(handle.read()).hexdigest()


def is_valid_oid(oid: object) -> bool:
    """Whether ``oid`` looks like an object id: 64 lowercase hex digits, maybe ``.dir``."""
    if not isinstance(oid, str):
        return False
    digest = oid.removesuffix(DIR_SUFFIX)
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
