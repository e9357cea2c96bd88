"""Pointer files (``PATH.mlops``): written, read back, and refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.core.yamlio import MAX_YAML_BYTES
from mlops.errors import InputError
from mlops.storage.hashing import hash_bytes
from mlops.storage.pointer import (
    Pointer,
    data_path,
    parse_pointer,
    pointer_path,
    read_pointer,
    write_pointer,
)

OID = hash_bytes(b"content")
WHERE = "data/raw.csv.mlops"


def text(**keys: object) -> str:
    body = {"path": "raw.csv", "algo": "blake3", "hash": OID, "size": 7, "files": 1, **keys}
    return "".join(f"{k}: {v}\n" for k, v in body.items() if v is not None)


@pytest.mark.parametrize(
    "pointer",
    [
        Pointer("raw.csv", OID, 7, 1),
        Pointer("images", OID + ".dir", 123_456, 40),
        Pointer('odd name: "quoted" # not a comment', OID, 0, 1),
        Pointer("café ünïcode", OID, 1, 1),
        Pointer("123", OID, 1, 1),  # a name that reads as a number in YAML
        Pointer("true", OID, 1, 1),
    ],
)
def test_written_and_read_back(tmp_path: Path, pointer: Pointer) -> None:
    target = tmp_path / "data" / pointer.path
    target.parent.mkdir()
    file = pointer_path(target)
    assert file.name == pointer.path + ".mlops"
    write_pointer(file, pointer, scratch=tmp_path / "scratch")
    assert file.read_text().startswith("# Written by mlops")
    assert read_pointer(file, tmp_path) == pointer
    assert data_path(file, pointer) == target
    assert pointer.is_dir == pointer.oid.endswith(".dir")
    assert not list((tmp_path / "scratch").iterdir())  # the temporary was renamed


def test_yaml_written_by_hand_is_read_too() -> None:
    written = f"# a comment\npath: 'raw.csv'\nalgo: blake3\nhash: {OID}\nsize:   7\n"
    assert parse_pointer(written, WHERE) == Pointer("raw.csv", OID, 7, 1)
    flow = f"{{path: raw.csv, algo: blake3, hash: {OID}}}"
    assert parse_pointer(flow, WHERE) == Pointer("raw.csv", OID, 0, 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (text(sise=3), r":6: unknown key 'sise' \(did you mean 'size'\?\)"),
        (
            text(colour="red"),
            r":6: unknown key 'colour' \(valid keys: path, algo, hash, size, files\)",
        ),
        (text(hash=None), r": missing key 'hash'"),
        (text(algo="md5"), r": unknown hash algorithm 'md5' \(this mlops knows blake3\)"),
        (text(path="sub/raw.csv"), r": key 'path' must be a file or folder name"),
        (text(path=".."), r": key 'path' must be a file or folder name"),
        (text(path=".GIT"), r": path '.GIT' is refused: has a '.GIT' component"),
        (text(hash="abc"), r": key 'hash' is not a valid blake3 hash: 'abc'"),
        (text(hash=OID.upper()), r": key 'hash' is not a valid blake3 hash"),
        (text(size="big"), r": keys 'size' and 'files' must be whole numbers"),
        (text(files="[1]"), r": keys 'size' and 'files' must be whole numbers"),
        (text(size="-5"), r": keys 'size' and 'files' must be whole numbers of at least 0"),
        (text(files="-1"), r": keys 'size' and 'files' must be whole numbers of at least 0"),
        (text(size="true"), r": keys 'size' and 'files' must be whole numbers"),
        ("- a list\n- not a mapping\n", r": not a pointer file \(expected a YAML mapping\)"),
        ("path: [unclosed\n", r":\d+: invalid YAML"),
        ("path: a\npath: b\n", r":\d+: invalid YAML"),
        ("# over the limit\n" * (MAX_YAML_BYTES // 10), r": not a pointer file \(over 1,048,576"),
    ],
)
def test_bad_pointers_are_refused_naming_the_file(body: str, message: str) -> None:
    with pytest.raises(InputError, match=f"^{WHERE}{message}"):
        parse_pointer(body, WHERE)


def test_a_superscript_size_is_refused_naming_the_file() -> None:
    with pytest.raises(InputError, match=f"^{WHERE}"):
        written = Pointer("raw.csv", OID, 7, 1).to_text()  # the form read without YAML
        parse_pointer(written.replace("size: 7", "size: \u00b2"), WHERE)


def test_read_pointer_names_the_file_relative_to_the_root(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with pytest.raises(InputError, match=r"^data/raw\.csv\.mlops: pointer file not found$"):
        read_pointer(folder / "raw.csv.mlops", tmp_path)
    (folder / "raw.csv.mlops").write_bytes(b"path: \xff\xfe\n")
    with pytest.raises(InputError, match=r"^data/raw.csv.mlops: not a pointer file \(not UTF-8"):
        read_pointer(folder / "raw.csv.mlops", tmp_path)
    (folder / "raw.csv.mlops").write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(InputError, match=r"^data/raw.csv.mlops: not a pointer file \(over"):
        read_pointer(folder / "raw.csv.mlops", tmp_path)
