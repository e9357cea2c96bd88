"""``Cache``: content-addressed objects in a local folder, written atomically, read-only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.errors import CacheError
from mlops.storage.cache import Cache, Soundness
from mlops.storage.hashing import hash_bytes
from mlops.storage.links import Linker
from mlops.storage.state import StateCache

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def new_cache(folder: Path) -> Cache:
    """A cache as ``Store`` opens it: state, scratch and aside folders of its own."""
    return Cache(
        folder / "cache",
        StateCache(folder / "state.db"),
        scratch=folder / "scratch",
        aside=folder / "corrupt",
    )


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return new_cache(tmp_path)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.mlops-tmp")) if folder.exists() else []


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_put_exists_read_and_layout(cache: Cache) -> None:
    oid = cache.add_bytes(b"hello\n")
    assert oid == hash_bytes(b"hello\n")
    assert cache.exists(oid)
    assert cache.read_bytes(oid) == b"hello\n"
    assert Path(cache.path(oid)) == cache.root / oid[:2] / oid[2:]
    assert cache.add_bytes(b"hello\n") == oid  # the same bytes: the same object, once
    assert list(cache.iter_objects()) == [oid]


def test_a_manifest_keeps_its_dir_suffix(cache: Cache) -> None:
    oid = cache.add_bytes(b'{"files":[]}', suffix=".dir")
    assert oid == hash_bytes(b'{"files":[]}') + ".dir"
    assert cache.exists(oid) and not cache.exists(oid.removesuffix(".dir"))
    assert cache.verify(oid)


def test_objects_are_read_only(cache: Cache) -> None:
    oid = cache.add_bytes(b"data")
    mode = stat.S_IMODE(os.stat(cache.path(oid)).st_mode)
    assert mode & _WRITE_BITS == 0, oct(mode)
    assert mode & stat.S_IRUSR


def test_iter_objects_lists_objects_only(cache: Cache) -> None:
    ids = {cache.add_bytes(f"object {i}".encode()) for i in range(5)}
    # The cache's own files sit beside the objects: its generation, its temporaries.
    Path(cache.temp_path()).write_bytes(b"half written")
    (cache.root / next(iter(ids))[:2] / ".hidden").write_bytes(b"x")
    (cache.root / "abc").mkdir()  # not a fan-out folder
    assert (cache.root / ".generation").exists()
    assert set(cache.iter_objects()) == ids
    assert len(list(cache.iter_objects())) == 5


def test_iter_objects_of_a_missing_cache_is_empty(tmp_path: Path) -> None:
    assert list(new_cache(tmp_path / "nothing").iter_objects()) == []


def test_reading_a_missing_object_says_how_to_get_it(cache: Cache) -> None:
    oid = hash_bytes(b"never stored")
    assert not cache.exists(oid)
    with pytest.raises(CacheError, match=rf"object {oid} is not in the cache: run `mlops fetch`"):
        cache.read_bytes(oid)


def test_existing_by_lookup_and_by_listing(cache: Cache) -> None:
    stored = {cache.add_bytes(f"{i}".encode()) for i in range(3)}
    absent = {hash_bytes(f"absent {i}".encode()) for i in range(2500)}
    assert cache.existing(stored | set(list(absent)[:10])) == stored  # few: one stat each
    assert cache.existing(stored | absent) == stored  # many: the fan-out folders listed


def test_temporaries_are_in_the_cache_folder_and_gone_after_a_write(cache: Cache) -> None:
    tmp = Path(cache.temp_path())
    assert tmp.parent == cache.root / "tmp"
    assert tmp.name.startswith(f"{os.getpid()}-") and tmp.name.endswith(".mlops-tmp")
    assert cache.temp_path() != str(tmp)
    for i in range(20):
        cache.add_bytes(f"payload {i}".encode())
    assert temporaries(cache.root) == []


def test_sweep_removes_only_temporaries_of_dead_processes(cache: Cache, tmp_path: Path) -> None:
    pid = dead_pid()
    (cache.root / "tmp").mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    stale = [
        cache.root / "tmp" / f"{pid}-1.mlops-tmp",
        tmp_path / "scratch" / f".{pid}-2.mlops-tmp",
    ]
    mine = Path(cache.temp_path())
    other = cache.root / "tmp" / f"{pid}-3.txt"  # not a temporary's name
    for path in (*stale, mine, other):
        path.write_bytes(b"left over")
    assert cache.sweep() == 2
    assert not any(path.exists() for path in stale)
    assert mine.exists() and other.exists()
    assert cache.sweep() == 0


def test_sweep_of_a_new_cache_is_zero(cache: Cache) -> None:
    assert cache.sweep() == 0


def corrupt_in_place(path: str, data: bytes) -> None:
    """Replace an object's bytes with others of the same size, its mtime kept."""
    before = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.write(data)
    os.chmod(path, stat.S_IMODE(before.st_mode))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_corrupt_objects_are_found_by_reading(cache: Cache, tmp_path: Path) -> None:
    good, bad = cache.add_bytes(b"good bytes"), cache.add_bytes(b"fine bytes")
    cache.state.flush()
    corrupt_in_place(cache.path(bad), b"evil bytes")
    missing = hash_bytes(b"missing")
    assert cache.rehash(good) and not cache.rehash(bad) and not cache.rehash(missing)
    # A state cache that never saw them reads every byte.
    fresh = Cache(cache.root, StateCache(tmp_path / "other-state.db"))
    assert fresh.soundness([good, bad, missing]) == [
        Soundness.SOUND,
        Soundness.CORRUPT,
        Soundness.MISSING,
    ]


def test_set_aside_moves_the_object_out_and_changes_the_generation(cache: Cache) -> None:
    oid = cache.add_bytes(b"soon corrupt")
    generation = cache.generation()
    assert generation
    cache.set_aside(oid)
    assert not cache.exists(oid)
    assert cache.is_set_aside(oid)
    assert cache.aside is not None and (cache.aside / oid).read_bytes() == b"soon corrupt"
    assert cache.generation() not in ("", generation)
    assert list(cache.iter_objects()) == []


def test_set_aside_without_a_folder_for_it_is_an_error(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache", StateCache(tmp_path / "state.db"))
    oid = cache.add_bytes(b"x")
    with pytest.raises(CacheError, match=f"cache object {oid} is corrupt"):
        cache.set_aside(oid)
    assert cache.exists(oid)


def test_placing_a_corrupt_object_by_copy_sets_it_aside(cache: Cache, tmp_path: Path) -> None:
    oid = cache.add_bytes(b"the real bytes")
    cache.state.flush()
    corrupt_in_place(cache.path(oid), b"the evil bytes")
    dst = tmp_path / "work" / "file.txt"
    dst.parent.mkdir()
    dst.write_text("the user's file")
    linker = Linker(["copy"])
    linker.probe(cache.root, dst.parent)
    with pytest.raises(CacheError, match=rf"cache object {oid} is corrupt .* set aside"):
        cache.place(oid, str(dst), linker)
    assert dst.read_text() == "the user's file"  # left as it was
    assert not cache.exists(oid) and cache.is_set_aside(oid)
    assert temporaries(tmp_path) == []


def test_generation_is_empty_until_the_first_object(cache: Cache) -> None:
    assert cache.generation() == ""
    cache.add_bytes(b"first")
    first = cache.generation()
    cache.add_bytes(b"second")
    assert cache.generation() == first  # adding keeps it; only removing changes it
    cache.bump_generation()
    assert cache.generation() not in ("", first)


def test_a_new_object_is_known_to_the_state_cache(cache: Cache) -> None:
    oid = cache.add_bytes(b"known")
    assert cache.state.get(os.stat(cache.path(oid))) == oid


@pytest.mark.parametrize("kind", ["copy", "hardlink", "symlink"])
def test_place_puts_the_object_at_the_workspace_path(
    cache: Cache, tmp_path: Path, kind: str
) -> None:
    oid = cache.add_bytes(b"#!/bin/sh\necho hi\n")
    work = tmp_path / "work"
    work.mkdir()
    linker = Linker([kind])
    assert linker.probe(cache.root, work) == kind
    dst = work / "run.sh"
    dst.write_text("old")
    assert cache.place(oid, str(dst), linker, executable=True) == kind
    assert dst.read_bytes() == b"#!/bin/sh\necho hi\n"
    mode = stat.S_IMODE(dst.stat().st_mode)
    if kind == "copy":  # the user's own copy: writable, executable as asked
        assert mode & stat.S_IWUSR and mode & stat.S_IXUSR
        assert dst.stat().st_ino != os.stat(cache.path(oid)).st_ino
    else:  # shares the cache's bytes: read-only, so an edit cannot corrupt the cache
        assert mode & _WRITE_BITS == 0
        assert os.stat(dst).st_ino == os.stat(cache.path(oid)).st_ino
    assert dst.is_symlink() == (kind == "symlink")
    assert temporaries(tmp_path) == []


def test_add_file_with_hardlinks_shares_the_inode(cache: Cache, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    src = work / "data.csv"
    src.write_text("a,b\n1,2\n")
    oid = hash_bytes(src.read_bytes())
    linker = Linker(["hardlink", "copy"])
    assert linker.probe(cache.root, work) == "hardlink"
    stored, replaced = cache.add_file(str(src), oid, os.stat(src), linker, present=False)
    assert (stored, replaced) == (True, False)
    assert os.stat(src).st_ino == os.stat(cache.path(oid)).st_ino
    assert stat.S_IMODE(os.stat(src).st_mode) & _WRITE_BITS == 0
    assert cache.verify(oid)
    # The same content under another name: already stored, the new file is replaced by a link.
    twin = work / "twin.csv"
    twin.write_text("a,b\n1,2\n")
    stored, replaced = cache.add_file(str(twin), oid, os.stat(twin), linker, present=True)
    assert (stored, replaced) == (False, True)
    assert os.stat(twin).st_ino == os.stat(cache.path(oid)).st_ino
