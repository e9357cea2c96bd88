"""``StateCache``: (inode, mtime_ns, size) -> hash, and the records of tracked folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops.storage.hashing import hash_file
from mlops.storage.state import FolderRecord, MonitorToken, StateCache, group_text

# Any 64 hex digits serve as a hash: the state cache stores what it is told.
A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def state(tmp_path: Path) -> StateCache:
    return StateCache(tmp_path / "state.db")


def made(path: Path, text: str) -> os.stat_result:
    path.write_text(text)
    return os.stat(path)


def test_put_then_get_before_and_after_flush(state: StateCache, tmp_path: Path) -> None:
    st = made(tmp_path / "f", "one")
    assert state.get(st) is None
    state.put(st, A)
    assert state.get(st) == A  # pending rows answer at once
    state.flush()
    assert state.get(st) == A
    state.close()
    assert StateCache(tmp_path / "state.db").get(st) == A  # on disk


def test_rows_not_flushed_are_not_on_disk(state: StateCache, tmp_path: Path) -> None:
    st = made(tmp_path / "f", "one")
    state.put(st, A)
    assert StateCache(tmp_path / "state.db").get(st) is None


def test_a_changed_mtime_size_or_inode_is_a_miss(state: StateCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    st = made(path, "four")
    state.put(st, A)
    state.flush()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert state.get(os.stat(path)) is None, "mtime changed"
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert state.get(os.stat(path)) == A, "mtime put back"
    with open(path, "a") as handle:
        handle.write("!")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert state.get(os.stat(path)) is None, "size changed"
    # The same bytes and mtime under a new inode (made while the old one is in use).
    other = tmp_path / "other"
    other.write_text("four")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = os.stat(other)
    assert (new.st_size, new.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert new.st_ino != st.st_ino
    assert state.get(new) is None, "another inode"


def test_get_many_answers_in_order(state: StateCache, tmp_path: Path) -> None:
    stats = [made(tmp_path / f"f{i}", f"content {i}") for i in range(6)]
    state.put(stats[0], A)
    state.put(stats[2], B)
    state.flush()
    state.put(stats[4], C)  # pending, not flushed
    expected = [A, None, B, None, C, None]
    assert state.get_many(stats) == expected
    assert state.get_many([]) == []
    preloaded = StateCache(tmp_path / "state.db")
    preloaded.preload()
    preloaded.put(stats[4], C)
    assert preloaded.get_many(stats) == expected
    assert [preloaded.get(st) for st in stats] == expected


def test_get_many_sees_a_changed_file_as_a_miss(state: StateCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    st = made(path, "abc")
    state.put(st, A)
    state.flush()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    assert state.get_many([os.stat(path)]) == [None]


def test_hash_reads_a_file_once(state: StateCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    st = made(path, "real content")
    assert state.hash(path) == hash_file(path)
    assert state.get(st) == hash_file(path)
    # Remembered: a second call trusts the unchanged stat and does not read the file.
    state.put(st, A)
    assert state.hash(path) == A
    assert state.hash_unknown(path, st) == hash_file(path)


def test_pending_rows_travel_to_another_state_cache(state: StateCache, tmp_path: Path) -> None:
    stats = [made(tmp_path / f"f{i}", str(i)) for i in range(3)]
    for st, oid in zip(stats, (A, B, C), strict=True):
        state.put(st, oid)
    rows = state.pending_rows()
    assert sorted(row[3] for row in rows) == [A, B, C]
    parent = StateCache(tmp_path / "parent.db")
    parent.put_rows(rows)
    assert parent.get_many(stats) == [A, B, C]


def test_pending_rows_since_a_mark_are_only_the_new_ones(state: StateCache, tmp_path: Path) -> None:
    # A forked worker inherits what its parent remembered; it sends back only its own.
    old = made(tmp_path / "old", "old")
    state.put(old, A)
    mark = state.pending_mark()
    new = made(tmp_path / "new", "new")
    state.put(new, B)
    assert [row[0] for row in state.pending_rows(mark)] == [new.st_ino]
    assert {row[0] for row in state.pending_rows()} == {old.st_ino, new.st_ino}
    other = StateCache(tmp_path / "other.db")
    other.put_rows(state.pending_rows(mark))
    assert other.get(new) == B and other.get(old) is None


def test_rows_since_a_mark_are_written_early_and_forgotten(
    state: StateCache, tmp_path: Path
) -> None:
    # A worker in a long share writes what it learnt as it goes, not what it inherited.
    old = made(tmp_path / "old", "old")
    state.put(old, A)
    mark = state.pending_mark()
    new = [made(tmp_path / f"new{i}", str(i)) for i in range(3)]
    for st, oid in zip(new, (B, C, A), strict=True):
        state.put(st, oid)
    state.write_rows(mark)
    assert state.pending_mark() == mark and state.pending_rows(mark) == []
    assert [row[0] for row in state.pending_rows()] == [old.st_ino]
    reader = StateCache(tmp_path / "state.db")
    assert reader.get_many([old, *new]) == [None, B, C, A]
    state.write_rows(mark)  # nothing new: nothing written, nothing forgotten
    assert [row[0] for row in state.pending_rows()] == [old.st_ino]


def test_flush_with_nothing_pending_makes_no_database(tmp_path: Path) -> None:
    state = StateCache(tmp_path / "sub" / "state.db")
    state.flush()
    assert not (tmp_path / "sub").exists()


def test_close_then_use_again(state: StateCache, tmp_path: Path) -> None:
    st = made(tmp_path / "f", "x")
    state.put(st, A)
    state.flush()
    state.close()
    state.close()  # twice is harmless
    assert state.get(st) == A  # reopened on demand


# Tracked folders ------------------------------------------------------------------------


def test_a_folder_record_with_its_groups(state: StateCache) -> None:
    assert state.folder("data") is None
    record = FolderRecord("fp-all", B + ".dir", "gen-1")
    groups = {
        "": ("fp-top", group_text(["a.txt 1 2 3"], [A])),
        "images": ("fp-img", group_text(["images/x.png 4 5 6", "images/y.png 7 8 9"], [B, C])),
    }
    state.put_folder("data", record, groups)
    state.flush()
    assert state.folder("data") == record
    assert state.folder_groups("data") == {"": "fp-top", "images": "fp-img"}
    assert state.folder_hashes("data") == {
        "a.txt 1 2 3": A,
        "images/x.png 4 5 6": B,
        "images/y.png 7 8 9": C,
    }
    assert state.folder_hashes("data", ["images"]) == {
        "images/x.png 4 5 6": B,
        "images/y.png 7 8 9": C,
    }
    assert state.folder_hashes("data", []) == {}
    assert state.folder("other") is None and state.folder_groups("other") == {}


def test_a_partial_update_changes_only_the_groups_given(state: StateCache) -> None:
    state.put_folder(
        "data",
        FolderRecord("fp1", A + ".dir", "g"),
        {"x": ("fx", group_text(["x/1 1"], [A])), "y": ("fy", group_text(["y/1 1"], [B]))},
    )
    state.flush()
    # "y" changed, "x" is gone, "z" is new; two updates before one flush merge.
    state.put_folder(
        "data",
        FolderRecord("fp2", B + ".dir", "g"),
        {"y": ("fy2", group_text(["y/1 2"], [C]))},
        complete=False,
    )
    state.put_folder(
        "data",
        FolderRecord("fp3", C + ".dir", "g"),
        {"x": None, "z": ("fz", group_text(["z/1 1"], [A]))},
        complete=False,
    )
    state.flush()
    assert state.folder("data") == FolderRecord("fp3", C + ".dir", "g")
    assert state.folder_groups("data") == {"y": "fy2", "z": "fz"}
    assert state.folder_hashes("data") == {"y/1 2": C, "z/1 1": A}


def test_a_complete_update_replaces_every_group(state: StateCache) -> None:
    state.put_folder("data", FolderRecord("f", A, "g"), {"x": ("fx", ""), "y": ("fy", "")})
    state.flush()
    state.put_folder("data", FolderRecord("f2", B, "g"), {"z": ("fz", "")})
    state.flush()
    assert state.folder_groups("data") == {"z": "fz"}


def test_monitor_tokens_keep_the_top_group(state: StateCache, tmp_path: Path) -> None:
    assert state.monitor_token("data") is None
    saved = MonitorToken("c:1:42", ["", "images"], ["a", "images/b"])
    state.put_monitor_token("data", saved)
    assert state.monitor_token("data") == saved  # before the flush
    state.flush()
    assert StateCache(tmp_path / "state.db").monitor_token("data") == saved


def test_a_state_file_that_is_not_a_database_starts_again_empty(tmp_path: Path) -> None:
    """It only remembers hashes: a damaged one costs a re-hash, never a failed command."""
    (tmp_path / "state.db").write_bytes(b"not a database, written over by accident\n" * 50)
    (tmp_path / "state.db-wal").write_bytes(b"stale")
    state = StateCache(tmp_path / "state.db")
    st = made(tmp_path / "f", "one")
    assert state.get(st) is None
    state.put(st, A)
    state.flush()
    state.close()
    assert StateCache(tmp_path / "state.db").get(st) == A


def test_a_write_that_fails_costs_only_the_rows(tmp_path: Path) -> None:
    """A state that cannot be written (here: its table gone under it) does not fail the
    command that learnt the hashes; the rows are simply not remembered."""
    import sqlite3

    state = StateCache(tmp_path / "state.db")
    st = made(tmp_path / "f", "one")
    assert state.get(st) is None  # opens the database
    state.put(st, A)
    with sqlite3.connect(tmp_path / "state.db") as other:
        other.execute("DROP TABLE state")
    state.flush()  # raises nothing
    state.put(st, B)
    assert state.get(st) == B
    state.close()


def test_one_file_is_found_in_a_group_text_without_parsing_it() -> None:
    from mlops.storage.state import group_file, group_files

    lines = ["a\x001\x002\x003\x00-", "ab\x001\x002\x003\x00x", "b/a\x001\x002\x003\x00-"]
    text = group_text(lines, [A, B, C])
    assert group_files(text) == dict(zip(lines, [A, B, C], strict=True))
    assert group_file(text, "a") == (lines[0], A)  # not "ab", which starts the same
    assert group_file(text, "ab") == (lines[1], B)
    assert group_file(text, "b/a") == (lines[2], C)  # the last line
    assert group_file(text, "b") is None and group_file(text, "") is None
    assert group_file("", "a") is None
