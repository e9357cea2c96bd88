"""Packs: many small objects bundled into one remote file plus an index.

Moving thousands of small objects one request (or one remote file) each is
dominated by per-object overhead: a round trip per PUT or GET, a create and a
rename per file. So a push bundles small objects into ``packs/<id>.pack`` (their
bytes, concatenated) with an index ``packs/<id>.idx`` (JSON: ``[[oid, offset,
size], ...]``), and a fetch reads the byte ranges it needs and stores every object
separately in the local cache, exactly as if it had been fetched alone.

The id is the BLAKE3 digest of the index, which also determines the pack's bytes
(its objects are content-addressed), so an index read once is kept locally
(``.mlops/tmp/pack-index/<id>.idx``) and checked against its id when reused.
The index is written after its pack: readers only trust packs whose index
exists, so an interrupted push leaves at worst an unreferenced pack, and the
next push sends those objects again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlops.errors import RemoteError
from mlops.storage.hashing import ALGORITHM, is_valid_oid

PACK_DIR = "packs"
FORMAT = "mlops-pack/1"
SMALL_OBJECT = 256 << 10  # objects up to this size go into packs
PACK_BYTES = 16 << 20  # a pack is closed once it holds this much
MIN_OBJECTS = 32  # fewer small objects than this are sent loose
READ_BYTES = 4 << 20  # one ranged read fetches at most this much
READ_GAP = 256 << 10  # unneeded bytes a ranged read reads through rather than splitting
# No pack is bigger than PACK_BYTES plus one object; this leaves room for other writers.
_MAX_OFFSET = 1 << 32


@dataclass(frozen=True)
class Located:
    """Where a packed object is: the pack's id, offset and size."""

    pack: str
    offset: int
    size: int


@dataclass(frozen=True)
class RangeRead:
    """One ranged read of a pack and the objects it covers (offsets relative to ``start``)."""

    pack: str
    start: int
    end: int
    items: tuple[tuple[str, int, int], ...]


def pack_key(pack_id: str) -> str:
    return f"{PACK_DIR}/{pack_id}.pack"


def index_key(pack_id: str) -> str:
    return f"{PACK_DIR}/{pack_id}.idx"


def build_index(objects: list[tuple[str, int]]) -> bytes:
    """The index of a pack holding ``objects`` (id, size), in that order."""
    rows, offset = [], 0
    for oid, size in objects:
        rows.append([oid, offset, size])
        offset += size
    return json.dumps({"format": FORMAT, "algo": ALGORITHM, "objects": rows}).encode()


def parse_index(data: bytes, pack_id: str) -> dict[str, Located]:
    """Read an index; anything malformed is an error naming the index."""
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT or doc.get("algo") != ALGORITHM:
            raise ValueError(f"unknown format {doc.get('format')!r}/{doc.get('algo')!r}")
        found = {}
        for oid, offset, size in doc["objects"]:
            if not is_valid_oid(oid):
                raise ValueError(f"invalid entry {oid!r}")
            # Sizes are checked before any read is planned from them: a hostile index
            # must not make a fetch ask for (or allocate) petabytes.
            if type(size) is not int or not 0 <= size <= SMALL_OBJECT:
                raise ValueError(f"entry {oid}: size {size!r} is not 0 to {SMALL_OBJECT}")
            if type(offset) is not int or not 0 <= offset <= _MAX_OFFSET:
                raise ValueError(f"entry {oid}: offset {offset!r} is not 0 to {_MAX_OFFSET}")
            found[oid] = Located(pack_id, offset, size)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RemoteError(f"pack index {index_key(pack_id)} is not valid: {exc}") from None
    return found


def group_into_packs(objects: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """Split (id, size) pairs into packs of about ``PACK_BYTES`` each."""
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    held = 0
    for oid, size in objects:
        if current and held + size > PACK_BYTES:
            groups.append(current)
            current, held = [], 0
        current.append((oid, size))
        held += size
    if current:
        groups.append(current)
    return groups


def plan_reads(wanted: list[tuple[str, Located]]) -> list[RangeRead]:
    """Coalesce wanted packed objects into few ranged reads of bounded size."""
    by_pack: dict[str, list[tuple[str, Located]]] = {}
    for oid, where in wanted:
        by_pack.setdefault(where.pack, []).append((oid, where))
    reads = []
    for pack, items in by_pack.items():
        items.sort(key=lambda item: item[1].offset)
        run: list[tuple[str, Located]] = []
        for oid, where in items:
            if run:
                start, end = run[0][1].offset, run[-1][1].offset + run[-1][1].size
                gap = where.offset - end
                if gap > READ_GAP or where.offset + where.size - start > READ_BYTES:
                    reads.append(_range(pack, run))
                    run = []
            run.append((oid, where))
        if run:
            reads.append(_range(pack, run))
    return reads


def _range(pack: str, run: list[tuple[str, Located]]) -> RangeRead:
    start = run[0][1].offset
    end = max(where.offset + where.size for _, where in run)
    items = tuple((oid, where.offset - start, where.size) for oid, where in run)
    return RangeRead(pack, start, end, items)
