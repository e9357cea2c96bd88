"""The rules a received path obeys before anything is written from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops.errors import InputError
from mlops.storage.paths import (
    all_safe,
    check_name,
    is_safe_relpath,
    layout_conflict,
    refuse_symlinks,
    unsafe_reason,
)

SAFE = [
    "a",
    "a/b/c.txt",
    "back\\slash",  # an ordinary character of a POSIX name
    "..hidden",
    "...",
    "a/.gitignore",
    ".github/workflows/ci.yml",
    "x.git",
    ".mlopsrc",
    "café/ünï",
    "sp ace/tab\tname",
]
UNSAFE = {
    "": "empty",
    "/abs": "absolute",
    "//server/share": "absolute",
    "a/../b": "not normalised",
    "..": "not normalised",
    "./a": "not normalised",
    "a/.": "not normalised",
    "a//b": "not normalised",
    "a/": "not normalised",
    ".git": "has a '.git' component",
    "a/.Git/config": "has a '.Git' component",
    "deep/er/.MLOPS": "has a '.MLOPS' component",
    ".mlops/cache/ab": "has a '.mlops' component",
    "nul\x00": "holds a NUL byte",
}


@pytest.mark.parametrize("path", SAFE)
def test_safe_paths(path: str) -> None:
    assert unsafe_reason(path) is None
    assert is_safe_relpath(path)
    assert all_safe([path]) and all_safe(["ok", path, "also/ok"])


@pytest.mark.parametrize(("path", "reason"), UNSAFE.items())
def test_unsafe_paths_and_why(path: str, reason: str) -> None:
    found = unsafe_reason(path)
    assert found is not None and found.startswith(reason), found
    # The fast checks (one pattern over one path, or over many joined) agree.
    assert not is_safe_relpath(path)
    assert not all_safe(["ok", path, "also/ok"])


def test_what_is_not_a_string() -> None:
    assert unsafe_reason(b"bytes") == "not a string"
    assert unsafe_reason(None) == "not a string"
    assert not is_safe_relpath(3)
    assert all_safe([])


@pytest.mark.parametrize("path", ["x/.mlop\u017f/y", ".g\u0130t"])
def test_the_three_checks_agree_on_case_folding(path: str) -> None:
    assert (unsafe_reason(path) is None) == is_safe_relpath(path) == all_safe([path])


@pytest.mark.parametrize(
    ("paths", "conflict"),
    [
        ([], None),
        (["a", "b", "c/d", "c/e"], None),
        (["ab", "a/b"], None),
        (["a", "b", "a"], "'a' is listed twice"),
        (["c", "c/d"], "'c' is both a file and a folder"),
        (["z/y/x", "z"], "'z' is both a file and a folder"),
    ],
)
def test_layout_conflict(paths: list[str], conflict: str | None) -> None:
    assert layout_conflict(paths) == conflict


@pytest.mark.parametrize(
    ("name", "reason"), [("a/b", "not a single name"), (".mlops", "has a '.mlops' component")]
)
def test_check_name_refuses_naming_the_place(name: str, reason: str) -> None:
    with pytest.raises(InputError, match=f"^x.mlops: path '{name}' is refused: {reason}$"):
        check_name(name, "x.mlops")
    check_name("fine.csv", "x.mlops")


def test_refuse_symlinks(tmp_path: Path) -> None:
    root, cache = tmp_path / "work", tmp_path / "cache"
    (root / "real").mkdir(parents=True)
    cache.mkdir()
    (cache / "object").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "linked")
    os.symlink(cache / "object", root / "real" / "placed")
    os.symlink(outside / "f", root / "real" / "elsewhere")
    (root / "file").write_text("x")

    refuse_symlinks(root, root / "real" / "new" / "deeper")  # not there yet: fine
    refuse_symlinks(root, root / "real" / "placed", cache)  # the symlink link type
    with pytest.raises(InputError, match=r"^linked: a symbolic link; mlops never writes"):
        refuse_symlinks(root, root / "linked" / "f")
    with pytest.raises(InputError, match=r"^real/placed: a symbolic link"):
        refuse_symlinks(root, root / "real" / "placed")  # no cache named: no exception
    with pytest.raises(InputError, match=r"^real/elsewhere: a symbolic link"):
        refuse_symlinks(root, root / "real" / "elsewhere", cache)
    with pytest.raises(InputError, match=r"^file: a file where a folder is needed for file/x"):
        refuse_symlinks(root, root / "file" / "x")
