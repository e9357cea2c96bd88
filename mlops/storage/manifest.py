"""Folder manifests: the sorted list of a folder's files, stored as an object ending in .dir."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as quote
from typing import NamedTuple

from mlops.errors import CacheError
from mlops.storage.hashing import ALGORITHM, DIR_SUFFIX, is_valid_oid
from mlops.storage.paths import all_safe, layout_conflict, unsafe_reason

_FIELDS = '["path","hash","size","exec"]'


class Entry(NamedTuple):
    """One file of a folder: path relative to the folder, hash, size, executable bit.

    A NamedTuple: folders hold tens of thousands of these, and tuples are cheap.
    """

    path: str
    oid: str
    size: int
    executable: bool = False


@dataclass(frozen=True)
class Manifest:
    """A folder's files, sorted by path."""

    entries: tuple[Entry, ...]

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.entries)

    def by_path(self) -> dict[str, Entry]:
        """Entries keyed by relative path."""
        return {entry.path: entry for entry in self.entries}

    def to_bytes(self) -> bytes:
        """The canonical serialisation whose hash is the folder's id.

        Byte for byte what ``json.dumps(doc, separators=(",", ":"))`` writes, where doc
        is ``{"algo", "fields", "files": [[path, hash, size, exec], ...]}``, built as
        text directly: three times faster for the tens of thousands of rows of a folder.
        """
        rows = ",".join(
            [
                f'[{quote(path)},"{oid}",{size:d},{1 if executable else 0}]'
                for path, oid, size, executable in self.entries
            ]
        )
        return f'{{"algo":"{ALGORITHM}","fields":{_FIELDS},"files":[{rows}]}}'.encode()


def build_manifest(entries: list[Entry]) -> Manifest:
    """A manifest from unsorted entries."""
    # Paths are unique, so tuples order by their first field, the path.
    return Manifest(tuple(sorted(entries)))


_HEAD = f'{{"algo":"{ALGORITHM}","fields":{_FIELDS},"files":['.encode()
_TAIL = b"]}"


def manifest_changes(
    old: bytes, new: bytes, names: tuple[str, str] = ("old", "new")
) -> tuple[list[Entry], list[Entry]]:
    """The entries only the ``old`` manifest has, and those only ``new`` has (``names``:
    what errors call the two).

    Both are compared as canonical bytes (see ``Manifest.to_bytes``), row by row: a row
    both hold byte for byte is the same file in both, whatever it says, so only the rows
    that differ are parsed, and two snapshots of a million files that differ by ten cost a
    split and a count at C speed, not a million parsed entries. A manifest not written by
    ``to_bytes``, or a row that is not one entry on its own (a name holding ``],[``),
    falls back to parsing both whole.
    """
    only_old, only_new = _rows(old), _rows(new)
    if only_old is not None and only_new is not None:
        common = only_old & only_new
        removed = _parsed(only_old - common)
        added = _parsed(only_new - common)
        if removed is not None and added is not None:
            return removed, added
    before = set(parse_manifest(old, names[0]).entries)
    after = set(parse_manifest(new, names[1]).entries)
    return sorted(before - after), sorted(after - before)


def _rows(data: bytes) -> Counter[bytes] | None:
    if not (data.startswith(_HEAD) and data.endswith(_TAIL)):
        return None
    body = data[len(_HEAD) : -len(_TAIL)]
    if not body:
        return Counter()
    if not (body.startswith(b"[") and body.endswith(b"]")):
        return None
    return Counter(body[1:-1].split(b"],["))


def _parsed(rows: Counter[bytes]) -> list[Entry] | None:
    entries = []
    for row, count in rows.items():
        try:
            path, oid, size, executable = json.loads(b"[" + row + b"]")
        except ValueError:  # not one row on its own, or not four fields
            return None
        if count != 1 or not isinstance(path, str) or not isinstance(oid, str):
            return None
        entries.append(Entry(path, oid, size, bool(executable)))
    return sorted(entries)


def parse_manifest(data: bytes, oid: str) -> Manifest:
    """Read a manifest object (see ``validate_manifest`` before writing files from it)."""
    try:
        doc = json.loads(data)
        if doc.get("algo") != ALGORITHM:
            raise CacheError(f"manifest {oid}: unknown hash algorithm {doc.get('algo')!r}")
        entries = tuple(
            Entry(path, file_oid, size, bool(executable))
            for path, file_oid, size, executable in doc["files"]
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheError(f"manifest {oid} is not a valid manifest: {exc}") from exc
    return Manifest(entries)


def validate_manifest(manifest: Manifest, oid: str) -> None:
    """Reject a manifest naming a path that could escape its folder or that is reserved
    (see ``mlops.storage.paths``), a malformed entry, a path listed twice, or one that
    is both a file and a folder: a one-line error naming the object.

    Called where files are written from a manifest (checkout) and where a
    manifest arrives from elsewhere (fetch); reading one for status skips it.
    """
    entries = manifest.entries
    if not _all_valid(entries):
        for entry in entries:  # name the first bad entry
            reason = unsafe_reason(entry.path)
            if reason is None and (
                not is_valid_oid(entry.oid)
                or entry.oid.endswith(DIR_SUFFIX)
                or type(entry.size) is not int
                or entry.size < 0
            ):
                reason = "malformed hash or size"
            if reason is not None:
                raise CacheError(
                    f"manifest {oid} is corrupt: invalid entry {entry.path!r} ({reason})"
                )
    conflict = layout_conflict([entry.path for entry in entries])
    if conflict is not None:
        raise CacheError(f"manifest {oid} is corrupt: {conflict}")


# All ids joined by newlines: one regular-expression pass instead of one per entry.
_FILE_OIDS = re.compile(r"[0-9a-f]{64}(?:\n[0-9a-f]{64})*")


def _all_valid(entries: tuple[Entry, ...]) -> bool:
    if not entries:
        return True
    try:
        paths = [e.path for e in entries]
        oids = "\n".join([e.oid for e in entries])
        if not all_safe(paths):
            return False
    except TypeError:  # a path or id that is not a string
        return False
    sizes = [e.size for e in entries]
    return (
        oids.count("\n") == len(entries) - 1
        and _FILE_OIDS.fullmatch(oids) is not None
        # Whole numbers (true and false are ints to Python), none below zero.
        and all(type(size) is int for size in sizes)
        and min(sizes) >= 0
    )
