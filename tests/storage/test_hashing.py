"""BLAKE3 hashing of bytes and files, copying while hashing, object ids."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops.storage.hashing import (
    MMAP_THRESHOLD,
    copy_hashed,
    hash_bytes,
    hash_early,
    hash_file,
    hash_file_stat,
    is_valid_oid,
)

# BLAKE3's published test vector for the empty input.
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_hash_bytes_is_blake3() -> None:
    assert hash_bytes(b"") == EMPTY
    assert len(hash_bytes(b"x")) == 64 and hash_bytes(b"x") != hash_bytes(b"y")


@pytest.mark.parametrize("size", [0, 1, 65_536, 65_537, MMAP_THRESHOLD - 1, MMAP_THRESHOLD + 3])
def test_a_file_hashes_as_its_bytes(tmp_path: Path, size: int) -> None:
    data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data)
    assert hash_file(path, size) == hash_bytes(data)
    digest, after = hash_file_stat(path)
    assert digest == hash_bytes(data) and after.st_size == size


def test_a_file_that_grew_since_it_was_listed_is_hashed_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 200_000)
    assert hash_file(path, size=10) == hash_bytes(b"x" * 200_000)


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "missing")


@pytest.mark.parametrize("size", [0, 1000, MMAP_THRESHOLD + 1])
def test_copy_hashed_returns_the_digest_of_the_copy(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(data)
    assert copy_hashed(str(src), str(dst)) == hash_bytes(data)
    assert dst.read_bytes() == data


def test_copy_hashed_never_overwrites(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        copy_hashed(str(src), str(dst))
    assert dst.read_bytes() == b"old"


def test_hash_early_gives_the_same_digest(tmp_path: Path) -> None:
    data = os.urandom(MMAP_THRESHOLD + 10)
    path = tmp_path / "big"
    path.write_bytes(data)
    hash_early([str(path), "--not-a-file", str(tmp_path)])  # what is not a big file is skipped
    assert hash_file(path) == hash_bytes(data)


def test_hash_early_of_a_file_changed_since_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"a" * (MMAP_THRESHOLD + 10))
    hash_early([str(path)])
    # The same size, other bytes, another mtime: the early digest is of another content.
    st = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(b"b" * 10)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert hash_file(path) == hash_bytes(b"b" * 10 + b"a" * MMAP_THRESHOLD)


@pytest.mark.parametrize(
    ("oid", "valid"),
    [
        (EMPTY, True),
        (EMPTY + ".dir", True),
        (EMPTY.upper(), False),
        (EMPTY[:-1], False),
        (EMPTY + "0", False),
        (EMPTY + ".DIR", False),
        (EMPTY + ".dir\n", False),
        ("../" + EMPTY[3:], False),
        ("", False),
        (None, False),
        (42, False),
    ],
)
def test_is_valid_oid(oid: object, valid: bool) -> None:
    assert is_valid_oid(oid) is valid
