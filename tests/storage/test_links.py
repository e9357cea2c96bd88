"""Link types (reflink, hardlink, symlink, copy) and ``Linker``'s fallback order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops.errors import CacheError
from mlops.storage.links import LINKERS, Linker, LinkUnsupported


def supported(kind: str, folder: Path) -> bool:
    """Whether ``kind`` works in ``folder`` (tried on a scratch file of its own)."""
    probe = folder / f"probe-{kind}"
    probe.mkdir()
    (probe / "src").write_bytes(b"probe")
    try:
        LINKERS[kind](str(probe / "src"), str(probe / "dst"))
    except LinkUnsupported:
        return False
    return True


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "cache" / "object"
    path.parent.mkdir()
    path.write_bytes(b"the object's bytes\n")
    return path


@pytest.mark.parametrize("kind", ["reflink", "hardlink", "symlink", "copy"])
def test_each_link_type_gives_the_same_bytes(tmp_path: Path, src: Path, kind: str) -> None:
    if not supported(kind, tmp_path):
        pytest.skip(f"{kind} is not supported by the file system of {tmp_path}")
    dst = tmp_path / "work" / "file"
    dst.parent.mkdir()
    LINKERS[kind](str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()
    same_inode = os.stat(dst).st_ino == os.stat(src).st_ino
    assert same_inode == (kind in ("hardlink", "symlink"))
    assert dst.is_symlink() == (kind == "symlink")
    if kind == "symlink":  # absolute, so that it resolves from any folder
        assert os.readlink(dst) == str(src.resolve())


def test_reflink_that_fails_leaves_nothing(tmp_path: Path, src: Path) -> None:
    if supported("reflink", tmp_path):
        pytest.skip(f"reflink works on the file system of {tmp_path}")
    dst = tmp_path / "dst"
    with pytest.raises(LinkUnsupported, match="reflink not supported"):
        LINKERS["reflink"](str(src), str(dst))
    assert not dst.exists()


def test_a_link_onto_an_existing_file_is_refused(tmp_path: Path, src: Path) -> None:
    dst = tmp_path / "dst"
    dst.write_text("mine")
    for kind in ("hardlink", "symlink"):
        with pytest.raises(FileExistsError):
            LINKERS[kind](str(src), str(dst))
    assert dst.read_text() == "mine"


def test_the_first_link_type_that_works_is_chosen(tmp_path: Path, src: Path) -> None:
    order = ["reflink", "hardlink", "symlink", "copy"]
    expected = next(kind for kind in order if supported(kind, tmp_path))
    linker = Linker(order)
    assert linker.chosen is None
    assert linker.probe(src.parent, tmp_path) == expected
    assert linker.chosen == expected
    assert sorted(p.name for p in src.parent.iterdir()) == ["object"]  # no probe left
    assert not list(tmp_path.glob(".link-probe-*"))


def test_fallback_skips_what_does_not_work(tmp_path: Path, src: Path) -> None:
    if supported("reflink", tmp_path):
        pytest.skip(f"reflink works on the file system of {tmp_path}: nothing to fall back from")
    linker = Linker(["reflink", "copy"])
    dst = tmp_path / "dst"
    assert linker.place(str(src), str(dst)) == "copy"
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_ino != os.stat(src).st_ino


def test_none_working_is_an_error_naming_the_types(tmp_path: Path, src: Path) -> None:
    if supported("reflink", tmp_path):
        pytest.skip(f"reflink works on the file system of {tmp_path}")
    with pytest.raises(LinkUnsupported, match=r"none of the link types \['reflink'\] works"):
        Linker(["reflink"]).place(str(src), str(tmp_path / "dst"))
    assert not (tmp_path / "dst").exists()


def test_a_chosen_type_is_used_from_then_on(tmp_path: Path, src: Path) -> None:
    linker = Linker(["hardlink", "copy"])
    assert linker.probe(src.parent, tmp_path) == "hardlink"
    for i in range(3):
        dst = tmp_path / f"dst{i}"
        assert linker.place(str(src), str(dst)) == "hardlink"
        assert os.stat(dst).st_ino == os.stat(src).st_ino


def test_storing_with_symlinks_copies_into_the_cache(tmp_path: Path, src: Path) -> None:
    """Workspace to cache, a symlink would point the wrong way: the bytes are copied."""
    linker = Linker(["symlink"])
    assert linker.probe(src.parent, tmp_path) == "symlink"
    workspace_file = tmp_path / "data.csv"
    workspace_file.write_text("a,b\n")
    into_cache = src.parent / "new-object"
    assert linker.place(str(workspace_file), str(into_cache), storing=True) == "symlink"
    assert not into_cache.is_symlink()
    assert into_cache.read_text() == "a,b\n"
    assert os.stat(into_cache).st_ino != os.stat(workspace_file).st_ino


def test_probe_in_a_cache_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="cannot write to the cache folder"):
        Linker(["copy"]).probe(Path("/proc/no-cache-here"), tmp_path)


def test_probe_in_an_unusable_cache_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(CacheError, match=f"cannot write to the cache folder {blocker}"):
        Linker(["copy"]).probe(blocker, tmp_path)
