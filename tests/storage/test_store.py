"""``Store``: the object store opened for one command."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.core.repo import Repo, find_repo
from mlops.storage.store import open_store
from tests.helpers.cli import run_cli
from tests.helpers.repos import init_git

OID = "d" * 64


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    init_git(tmp_path)
    assert run_cli(tmp_path, "init").exit_code == 0
    return find_repo(tmp_path)


def test_leaving_the_block_flushes_and_closes_the_state(repo: Repo) -> None:
    data = repo.root / "data.csv"
    data.write_text("a,b\n1,2\n")
    with open_store(repo) as store:
        store.state.put(data.stat(), OID)
    # SQLite deletes the write-ahead log when the last connection closes: a connection
    # left for the garbage collector would delete it later, under a copy of the repo.
    assert not (repo.mlops_dir / "state.db-wal").exists()
    with open_store(repo) as store:
        assert store.state.get(data.stat()) == OID


def test_an_error_in_the_block_still_flushes_and_closes(repo: Repo) -> None:
    data = repo.root / "data.csv"
    data.write_text("x\n")
    with pytest.raises(RuntimeError), open_store(repo) as store:
        store.state.put(data.stat(), OID)
        raise RuntimeError("stage failed")
    assert not (repo.mlops_dir / "state.db-wal").exists()
    with open_store(repo) as store:
        assert store.state.get(data.stat()) == OID


def test_a_command_leaves_no_connection_open(repo: Repo) -> None:
    (repo.root / "data.csv").write_text("a\n1\n")
    assert run_cli(repo.root, "add", "data.csv").exit_code == 0
    assert not (repo.mlops_dir / "state.db-wal").exists()


def test_commands_work_on_when_the_state_is_not_a_database(repo: Repo) -> None:
    (repo.root / "data.csv").write_text("a\n1\n")
    assert run_cli(repo.root, "add", "data.csv").exit_code == 0
    (repo.mlops_dir / "state.db").write_bytes(b"\0garbage" * 100)
    (repo.root / "more.csv").write_text("b\n2\n")
    assert run_cli(repo.root, "add", "more.csv").exit_code == 0
    result = run_cli(repo.root, "status")
    assert result.exit_code == 0, result.stderr


def test_a_manifest_judged_sound_is_judged_again_once_its_bytes_change(repo: Repo) -> None:
    """Checkout remembers the manifests that passed the path checks; one whose bytes were
    changed since (same name in the cache, a path out of the folder) is checked again."""
    import json
    import os

    from mlops.storage.pointer import read_pointer

    folder = repo.root / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    assert run_cli(repo.root, "add", "data").exit_code == 0
    oid = read_pointer(repo.root / "data.mlops", repo.root).oid
    assert run_cli(repo.root, "checkout", "--force", "data").exit_code == 0
    with open_store(repo) as store:
        assert store.state.is_sound_manifest(oid)
        path = store.cache.path(oid)
    hostile = {"algo": "blake3", "fields": ["path", "hash", "size", "exec"],
               "files": [["../escaped.txt", "a" * 64, 2, 0]]}  # fmt: skip
    os.chmod(path, 0o644)
    with open(path, "w") as handle:
        json.dump(hostile, handle, separators=(",", ":"))
    result = run_cli(repo.root, "checkout", "--force", "data")
    assert result.exit_code == 1
    assert "../escaped.txt" in result.stderr
    assert not (repo.root / "escaped.txt").exists()
