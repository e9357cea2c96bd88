"""Folder manifests: canonical bytes, parsing, and the checks before files are written."""

from __future__ import annotations

import json

import pytest

from mlops.errors import CacheError
from mlops.storage.hashing import hash_bytes
from mlops.storage.manifest import (
    Entry,
    build_manifest,
    manifest_changes,
    parse_manifest,
    validate_manifest,
)

A, B = hash_bytes(b"a"), hash_bytes(b"b")
OID = hash_bytes(b"manifest") + ".dir"


def manifest_bytes(rows: object, algo: object = "blake3") -> bytes:
    return json.dumps({"algo": algo, "fields": ["path", "hash", "size", "exec"], "files": rows})


def test_entries_are_sorted_and_sized() -> None:
    manifest = build_manifest([Entry("b/2", B, 2), Entry("a", A, 1, True), Entry("b/1", A, 3)])
    assert [e.path for e in manifest.entries] == ["a", "b/1", "b/2"]
    assert manifest.size == 6
    assert manifest.by_path()["a"] == Entry("a", A, 1, True)


def test_bytes_are_the_compact_json_and_parse_back() -> None:
    entries = [Entry('quote " and \\ back', A, 1), Entry("café/naïve.txt", B, 22, True)]
    manifest = build_manifest(entries)
    data = manifest.to_bytes()
    doc = {
        "algo": "blake3",
        "fields": ["path", "hash", "size", "exec"],
        "files": [[e.path, e.oid, e.size, int(e.executable)] for e in manifest.entries],
    }
    assert data == json.dumps(doc, separators=(",", ":")).encode()
    assert parse_manifest(data, OID) == manifest
    assert (
        build_manifest([]).to_bytes()
        == b'{"algo":"blake3","fields":["path","hash","size","exec"],"files":[]}'
    )


def test_a_valid_manifest_passes() -> None:
    rows = [Entry(f"part-{i:05}/x.bin", A, i) for i in range(3000)]
    validate_manifest(build_manifest(rows), OID)  # no error
    validate_manifest(build_manifest([]), OID)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "is not a valid manifest"),
        (b"[1, 2]", "is not a valid manifest"),
        (b'{"algo": "blake3"}', "is not a valid manifest"),
        (manifest_bytes([["a", A, 1]]), "is not a valid manifest"),
        (manifest_bytes([["a", A, 1, 0]], algo="md5"), "unknown hash algorithm 'md5'"),
        (b"\xff\xfe", "is not a valid manifest"),
    ],
)
def test_parse_refuses_what_is_not_a_manifest(data: bytes, message: str) -> None:
    with pytest.raises(CacheError, match=f"manifest {OID}.*{message}"):
        parse_manifest(data, OID)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["../escape", A, 1, 0], "not normalised"),
        (["/etc/passwd", A, 1, 0], "absolute"),
        (["a//b", A, 1, 0], "not normalised"),
        (["a/./b", A, 1, 0], "not normalised"),
        (["x/.git/config", A, 1, 0], "has a '.git' component"),
        (["X/.MLOPS/cache", A, 1, 0], "has a '.MLOPS' component"),
        (["nul\x00byte", A, 1, 0], "holds a NUL byte"),
        (["", A, 1, 0], "empty"),
        ([7, A, 1, 0], "not a string"),
        (["ok", A[:-1], 1, 0], "malformed hash or size"),
        (["ok", A + ".dir", 1, 0], "malformed hash or size"),
        (["ok", 12, 1, 0], "malformed hash or size"),
        (["ok", A, "1", 0], "malformed hash or size"),
        (["ok", A, 1.5, 0], "malformed hash or size"),
        (["ok", A, -1, 0], "malformed hash or size"),
        (["ok", A, True, 0], "malformed hash or size"),
    ],
)
def test_validate_names_the_bad_entry(row: list[object], reason: str) -> None:
    manifest = parse_manifest(manifest_bytes([["fine", B, 1, 0], row]), OID)
    with pytest.raises(CacheError, match=f"manifest {OID} is corrupt: invalid entry .*{reason}"):
        validate_manifest(manifest, OID)


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (["a", "a"], "'a' is listed twice"),
        (["d", "d/file"], "'d' is both a file and a folder"),
        (["x/y", "x/y/z/w"], "'x/y' is both a file and a folder"),
    ],
)
def test_validate_refuses_an_ambiguous_layout(paths: list[str], problem: str) -> None:
    manifest = parse_manifest(manifest_bytes([[p, A, 1, 0] for p in paths]), OID)
    with pytest.raises(CacheError, match=f"manifest {OID} is corrupt: {problem}"):
        validate_manifest(manifest, OID)


def _expected(old: list[Entry], new: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    return sorted(set(old) - set(new)), sorted(set(new) - set(old))


NAMES = ["a", "b/1", "b/2", 'q"uote', "tricky],[name", "x],[", "],[", "café/naïve", "z" * 40]


@pytest.mark.parametrize("seed", range(40))
def test_manifest_changes_agree_with_comparing_every_entry(seed: int) -> None:
    """Rows compared as bytes give what comparing parsed entries gives: added, deleted,
    changed content, a changed executable bit, names holding the row separator."""
    import random

    rng = random.Random(seed)
    oids = [hash_bytes(bytes([i])) for i in range(4)]

    def some() -> list[Entry]:
        chosen = rng.sample(NAMES, rng.randint(0, len(NAMES)))
        return [Entry(n, rng.choice(oids), rng.randint(0, 3), rng.random() < 0.2) for n in chosen]

    old, new = build_manifest(some()), build_manifest(some())
    got = manifest_changes(old.to_bytes(), new.to_bytes())
    assert got == _expected(list(old.entries), list(new.entries))


def test_manifest_changes_of_a_manifest_not_written_canonically() -> None:
    """Another writer's spacing or key order: parsed whole, with the same answer."""
    old = [Entry("a", A, 1), Entry("b", A, 2)]
    other = json.dumps(
        {"files": [["a", A, 1, 0], ["b", B, 2, 1]], "fields": ["path", "hash", "size", "exec"],
         "algo": "blake3"},
        indent=1,
    ).encode()  # fmt: skip
    new = [Entry("a", A, 1), Entry("b", B, 2, True)]
    assert manifest_changes(build_manifest(old).to_bytes(), other) == _expected(old, new)


def test_manifest_changes_of_one_row_among_many() -> None:
    entries = [Entry(f"{i // 100:03d}/{i}.txt", A, 500) for i in range(20_000)]
    changed = list(entries)
    changed[7] = Entry(changed[7].path, B, 501)
    del changed[9000]
    changed.append(Entry("new.txt", B, 1))
    removed, added = manifest_changes(
        build_manifest(entries).to_bytes(), build_manifest(changed).to_bytes()
    )
    assert removed == [entries[7], entries[9000]]
    assert added == [Entry("000/7.txt", B, 501), Entry("new.txt", B, 1)]


@pytest.mark.parametrize("seed", range(12))
def test_manifest_changes_of_big_manifests_agree_with_comparing_every_entry(seed: int) -> None:
    """Thousands of rows and a few changes anywhere (first row, last row, runs of them):
    the skipped stretches and the rows where the two part give the full comparison."""
    import random

    rng = random.Random(seed)
    entries = [
        Entry(f"{i % 37:02d}/{i}.bin", hash_bytes(bytes([i % 251])), i, False) for i in range(6000)
    ]
    changed = list(entries)
    for _ in range(rng.randint(1, 12)):
        k = rng.choice([0, len(changed) - 1, rng.randrange(len(changed))])
        kind = rng.choice(["content", "mode", "delete", "add", "run"])
        if kind == "content":
            changed[k] = changed[k]._replace(oid=hash_bytes(b"x%d" % k), size=changed[k].size + 1)
        elif kind == "mode":
            changed[k] = changed[k]._replace(executable=not changed[k].executable)
        elif kind == "delete" and len(changed) > 1:
            del changed[k]
        elif kind == "add":
            changed.append(Entry(f"{rng.choice(['', '00/', 'zz/'])}new{k}.bin", A, 1))
        else:
            del changed[k : k + rng.randint(1, 300)]
    old, new = build_manifest(entries), build_manifest(list(dict.fromkeys(changed)))
    got = manifest_changes(old.to_bytes(), new.to_bytes())
    assert got == _expected(list(old.entries), list(new.entries))
    assert manifest_changes(new.to_bytes(), old.to_bytes()) == (got[1], got[0])
