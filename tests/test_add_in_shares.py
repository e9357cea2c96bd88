"""A first ``add`` of a big folder: each worker process takes its share of the files from
their stat to their share of the manifest and of the folder's record. What it makes must
be what a serial scan makes, byte for byte, and a refusal must come before anything is
stored or linked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from blake3 import blake3

from mlops.core.repo import Repo
from mlops.storage.cache import SHARE_MIN_FILES
from mlops.storage.store import open_store
from mlops.workspace.add import add
from mlops.workspace.tracked import fingerprint, group_fingerprints, scan_lines
from tests.helpers.cli import run_cli, run_subprocess

# Group names that sort differently as names and as path prefixes ("a" < "a b" < "a-b" <
# "a.b" < "a/..." in path order), a file at the top named like a group's prefix, nesting,
# names that JSON escapes, and one big group that share boundaries cut.
_GROUPS = ["a", "a b", "a-b", "ab", "é", "z", 'q"uote', "big"]


def make_tricky_folder(folder: Path) -> dict[str, bytes]:
    """More than SHARE_MIN_FILES files, laid out to catch an ordering mistake."""
    contents: dict[str, bytes] = {}

    def put(rel: str, data: bytes) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        contents[rel] = data

    for i in range(300):  # the top: group "", which a share boundary cuts too
        put(f"top{i}.txt", os.urandom(40))
    put("a.b", b"a file named like the groups")
    for name in _GROUPS:
        count = 700 if name == "big" else 40
        for i in range(count):
            put(f"{name}/{i}.txt", os.urandom(30) if i % 9 else b"same bytes")
        put(f"{name}/deep/er/{name}.bin", os.urandom(100))
    put("tab\there/x", b"tab")
    (folder / "empty").mkdir()
    (folder / "a" / "3.txt").chmod(0o755)
    (folder / "z" / "link.txt").symlink_to(folder / "top1.txt")
    contents["z/link.txt"] = contents["top1.txt"]
    assert len(contents) > SHARE_MIN_FILES
    return contents


def expected_manifest(contents: dict[str, bytes], executable: set[str]) -> bytes:
    """The manifest as the format defines it: canonical JSON, sorted by path."""
    rows = [
        [rel, blake3(data).hexdigest(), len(data), int(rel in executable)]
        for rel, data in sorted(contents.items())
    ]
    doc = {"algo": "blake3", "fields": ["path", "hash", "size", "exec"], "files": rows}
    return json.dumps(doc, separators=(",", ":")).encode()


@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
@pytest.mark.parametrize("link", ["[hardlink, copy]", "[copy]"])
def test_a_first_add_in_shares_makes_what_a_serial_scan_makes(
    repo: Path, jobs: int, link: str
) -> None:
    assert run_cli(repo, "config", "cache.link", link).exit_code == 0
    folder = repo / "data"
    contents = make_tricky_folder(folder)
    reports: list[tuple[str, int, int]] = []
    (result,) = add(Repo(repo), [str(folder)], jobs=jobs, progress=lambda *r: reports.append(r))
    assert result.files == len(contents) and result.size == sum(map(len, contents.values()))
    data = (repo / ".mlops" / "cache" / result.oid[:2] / result.oid[2:]).read_bytes()
    assert data == expected_manifest(contents, {"a/3.txt"})
    assert result.oid == blake3(data).hexdigest() + ".dir"
    unique = len(set(contents.values()))
    if "hardlink" in link:  # a link to an object appears once: a second one fails
        assert result.stored == unique
    else:  # two workers copying the same bytes at once both count them (both renames land)
        assert unique <= result.stored <= unique + 2 * (jobs - 1)  # two contents repeat
    assert ("adding", len(contents), len(contents)) in reports
    # The record is the one status's own scan gives: status then trusts it.
    scan = scan_lines(folder)
    with open_store(Repo(repo)) as store:
        record = store.state.folder("data")
        groups = store.state.folder_groups("data")
        files = store.state.folder_hashes("data")
    assert groups == group_fingerprints(scan.lines, scan.groups)
    assert record is not None and record.fingerprint == fingerprint(groups)
    assert files == {line: blake3(contents[line.split("\0")[0]]).hexdigest() for line in scan.lines}
    with open_store(Repo(repo)) as store:  # what every worker learnt was written
        stats = [os.stat(folder / rel) for rel in contents]
        assert store.state.get_many(stats) == [blake3(d).hexdigest() for d in contents.values()]
    clean = run_cli(repo, "status", "--json", "--exit-code")
    assert clean.exit_code == 0, clean.output
    (folder / "big" / "5.txt").unlink()
    (folder / "big" / "5.txt").write_bytes(b"new")
    changed = run_cli(repo, "status", "--json", "--exit-code")
    assert json.loads(changed.stdout)["data"][0]["modified"] == ["big/5.txt"]


def test_a_first_add_in_shares_with_symlinks_records_nothing(repo: Path) -> None:
    """Symlinked files are checked every time: no record, but the same manifest."""
    assert run_cli(repo, "config", "cache.link", "[symlink]").exit_code == 0
    folder = repo / "data"
    contents = make_tricky_folder(folder)
    (result,) = add(Repo(repo), [str(folder)], jobs=2)
    data = (repo / ".mlops" / "cache" / result.oid[:2] / result.oid[2:]).read_bytes()
    assert data == expected_manifest(contents, {"a/3.txt"})
    with open_store(Repo(repo)) as store:
        assert store.state.folder("data") is None
    assert os.path.islink(folder / "big" / "7.txt")


def _bad_name(folder: Path, kind: str) -> None:
    if kind == "git folder":
        (folder / "big" / "deep" / ".git").mkdir()
        (folder / "big" / "deep" / ".git" / "config").write_text("[core]\n")
    elif kind == "not utf-8":
        (folder / "z" / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name")
    elif kind == "broken link":
        (folder / "ab" / "gone.txt").symlink_to(folder / "nowhere")
    else:
        (folder / "é" / "dir-link").symlink_to(folder / "big")


@pytest.mark.parametrize("kind", ["git folder", "not utf-8", "broken link", "link to a folder"])
def test_a_bad_name_deep_in_a_big_folder_stops_add_before_anything_is_stored(
    repo: Path, kind: str
) -> None:
    folder = repo / "data"
    contents = make_tricky_folder(folder)
    _bad_name(folder, kind)
    before = {rel: (folder / rel).lstat() for rel in contents}
    result = run_subprocess(repo, "add", "--jobs", "2", "data")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("mlops: error: ")
    assert not (repo / "data.mlops").exists()
    objects = [p for p in (repo / ".mlops" / "cache").rglob("*") if p.is_file()]
    assert objects == []
    for rel, st in before.items():  # every file as it was: not linked, not made read-only
        now = (folder / rel).lstat()
        assert (now.st_ino, now.st_nlink, now.st_mode) == (st.st_ino, st.st_nlink, st.st_mode)
        assert (folder / rel).read_bytes() == contents[rel]
    assert stat.S_IMODE(before["top0.txt"].st_mode) & stat.S_IWUSR


def test_a_first_add_in_shares_learns_from_a_state_that_knows_the_files(repo: Path) -> None:
    """The record gone (a new cache generation), the state still knows every file: the
    workers look their share up instead of hashing it, and store nothing twice."""
    folder = repo / "data"
    make_tricky_folder(folder)
    first = run_subprocess(repo, "add", "--jobs", "2", "data")
    assert first.returncode == 0, first.stderr
    with open_store(Repo(repo)) as store:
        store.state.put_folder("data", store.state.folder("data")._replace(generation="old"), {})
    again = run_subprocess(repo, "add", "--jobs", "2", "data")
    assert again.returncode == 0, again.stderr
    assert "0 new objects" in again.stdout
    clean = run_cli(repo, "status", "--json", "--exit-code")
    assert clean.exit_code == 0, clean.output


def test_workers_with_long_shares_write_what_they_learn_as_they_go(repo: Path) -> None:
    """Past ``_WRITE_EVERY`` rows a worker writes them early (beside the others): all of
    them still reach the state, none twice, and none of what it inherited."""
    from mlops.workspace.add import _WRITE_EVERY

    folder = repo / "many"
    count = 2 * _WRITE_EVERY + 2_000  # both workers of two pass the bound
    for group in range(20):
        (folder / f"{group:02d}").mkdir(parents=True)
    for i in range(count):
        (folder / f"{i % 20:02d}" / f"{i}.bin").write_bytes(i.to_bytes(4, "little"))
    result = run_subprocess(repo, "add", "--jobs", "2", "many")
    assert result.returncode == 0, result.stderr
    with open_store(Repo(repo)) as store:
        paths = [folder / f"{i % 20:02d}" / f"{i}.bin" for i in range(count)]
        known = store.state.get_many([os.stat(p) for p in paths])
    assert known == [blake3(i.to_bytes(4, "little")).hexdigest() for i in range(count)]
    import sqlite3

    with sqlite3.connect(repo / ".mlops" / "state.db") as db:
        inodes = [row[0] for row in db.execute("SELECT inode FROM state")]
    # A row per workspace file and per object (copies: inodes of their own), manifest too.
    objects = [p for p in (repo / ".mlops" / "cache").glob("??/*")]
    assert sorted(inodes) == sorted({p.stat().st_ino for p in [*paths, *objects]})


def test_a_file_removed_while_its_folder_is_being_added_is_a_clear_error(repo: Path) -> None:
    """Between the listing and the workers' stat, a file goes: one line naming it."""
    from mlops.errors import InputError

    folder = repo / "data"
    make_tricky_folder(folder)
    gone = folder / "big" / "600.txt"

    def remove_once_listed(task: str, done: int, total: int) -> None:
        if task == "scanning" and total and gone.exists():
            gone.unlink()

    with pytest.raises(InputError, match=r"big/600\.txt: removed while its folder was being"):
        add(Repo(repo), [str(folder)], jobs=2, progress=remove_once_listed)
    assert not (repo / "data.mlops").exists()
