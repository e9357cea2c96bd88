"""A reference to content in the object store: what pointers, the lock and the registry
all record of a tracked path (each in a format of its own)."""

from __future__ import annotations

from dataclasses import dataclass

from mlops.storage.hashing import DIR_SUFFIX


@dataclass(frozen=True)
class ContentRef:
    """The content of ``path``: a file's hash, or a folder's manifest id (``.dir``), with
    its size in bytes and its number of files."""

    path: str
    oid: str
    size: int
    files: int = 1

    @property
    def is_dir(self) -> bool:
        return self.oid.endswith(DIR_SUFFIX)
