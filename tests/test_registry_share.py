"""Sharing the registry: two clones of a bare repository register "version 3" at the same
time, exchange tags with plain Git, and both keep both versions; model objects travel
with ``mlops push`` and ``model get`` fetches them from the remote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import as_json, ok, run_cli
from tests.helpers.registry import tags, train_model
from tests.helpers.repos import commit_all, git, init_git


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, Path]:
    """Alice and Bob: two clones of one bare repository, sharing one object remote."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    alice = init_git(tmp_path / "alice")
    git(alice, "config", "user.name", "Alice")
    ok(alice, "init")
    ok(alice, "remote", "add", "shared", str(tmp_path / "objects"), "--default")
    (alice / ".gitignore").write_text("/model.joblib\n/out*\n")
    commit_all(alice, "start", allow_empty=True)
    git(alice, "remote", "add", "origin", str(origin))
    git(alice, "push", "-q", "origin", "main")
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(origin), str(bob))
    for key, value in (("name", "Bob"), ("email", "bob@example.com")):
        git(bob, "config", f"user.{key}", value)
    return alice, bob


def register(clone: Path, c: float) -> dict[str, object]:
    train_model(clone / "model.joblib", c)
    data = as_json(clone, "model", "register", "iris", "model.joblib")
    assert isinstance(data, dict)
    return data


def test_concurrent_version_3_on_two_clones_keeps_both(team: tuple[Path, Path]) -> None:
    alice, bob = team
    register(alice, 0.1)
    register(alice, 0.2)
    git(alice, "push", "-q", "origin", "--tags")
    ok(alice, "push")
    git(bob, "fetch", "-q", "origin", "--tags")
    assert [v["latest"] for v in as_json(bob, "model", "list")] == ["2"]  # type: ignore[union-attr,index]

    # Both register "version 3" and promote it to staging without seeing the other's.
    mine = register(alice, 0.3)
    theirs = register(bob, 0.4)
    assert mine["number"] == theirs["number"] == 3 and mine["id"] != theirs["id"]
    ok(alice, "model", "promote", "iris", "3", "--to", "staging")
    ok(bob, "model", "promote", "iris", "3", "--to", "staging")
    alice_tags = tags(alice)

    # Plain Git shares the registry, in both directions, with no conflict.
    for clone in (alice, bob):
        git(clone, "push", "-q", "origin", "--tags")
    for clone in (alice, bob):
        git(clone, "fetch", "-q", "origin", "--tags")
    assert tags(alice) == tags(bob)
    assert {k: v for k, v in tags(alice).items() if k in alice_tags} == alice_tags  # untouched
    assert len(tags(alice)) == 6  # four versions, two staging moves

    for clone in (alice, bob):
        listed = as_json(clone, "model", "list")
        assert listed == as_json(alice, "model", "list")  # same view in both clones
        labels = [
            h["version"]
            for h in as_json(clone, "model", "history", "iris")  # type: ignore[union-attr]
            if h["action"] == "register"
        ]
        assert sorted(labels) == sorted(["1", "2", f"3-{mine['id']}", f"3-{theirs['id']}"])
        error = run_cli(clone, "model", "show", "iris:3")
        assert error.exit_code == 1
        assert "iris:3 is ambiguous" in error.stderr
        assert f"iris:3-{mine['id']}" in error.stderr and f"iris:3-{theirs['id']}" in error.stderr
        assert as_json(clone, "model", "show", f"iris:3-{str(mine['id'])[:6]}")["author"] == (  # type: ignore[index]
            "Alice <test@example.com>"
        )
    # The staging holder is the newer move, the same in both clones.
    holders = {str(as_json(c, "model", "show", "iris@staging")["id"]) for c in (alice, bob)}  # type: ignore[index]
    assert holders == {str(theirs["id"])}
    # The next registration takes the next free number.
    assert register(alice, 0.5)["version"] == "4"


def test_model_objects_travel_with_mlops_push_and_get_fetches_them(
    team: tuple[Path, Path],
) -> None:
    alice, bob = team
    data = register(alice, 0.7)
    result = json.loads(ok(alice, "push", "--json"))
    assert result["objects"] >= 1
    git(alice, "push", "-q", "origin", "--tags")
    git(bob, "fetch", "-q", "origin", "--tags")
    ok(bob, "model", "promote", "iris", "1", "--to", "production")
    # Bob's cache does not have the model: get fetches it from the default remote.
    got = as_json(bob, "model", "get", "iris@production", "-o", "out.joblib")
    assert got["fetched"] == 1  # type: ignore[index]
    assert (bob / "out.joblib").read_bytes() == (alice / "model.joblib").read_bytes()
    oid = str(data["content"]["hash"])  # type: ignore[index]
    assert (bob / ".mlops" / "cache" / oid[:2] / oid[2:]).is_file()
    # gc in Bob's clone keeps it; fetching everything again has nothing to do.
    ok(bob, "gc")
    assert (bob / ".mlops" / "cache" / oid[:2] / oid[2:]).is_file()


def test_get_without_the_object_or_a_remote_is_a_clear_error(team: tuple[Path, Path]) -> None:
    alice, bob = team
    ok(alice, "push")  # the remote exists, but Alice never pushes the model
    register(alice, 0.9)
    git(alice, "push", "-q", "origin", "--tags")
    git(bob, "fetch", "-q", "origin", "--tags")
    result = run_cli(bob, "model", "get", "iris:1", "-o", "out.joblib")
    assert result.exit_code == 1
    assert "iris:1: remote" in result.stderr and "not on the remote" in result.stderr
    assert not (bob / "out.joblib").exists()
    ok(bob, "remote", "remove", "shared")
    result = run_cli(bob, "model", "get", "iris:1", "-o", "out.joblib")
    assert result.exit_code == 1
    assert "is not in the cache and no remote is configured" in result.stderr


def test_pull_does_not_wait_on_a_model_nobody_pushed(team: tuple[Path, Path]) -> None:
    alice, bob = team
    (alice / "data.csv").write_text("a,b\n1,2\n")
    ok(alice, "add", "data.csv")
    commit_all(alice, "data", allow_empty=True)
    ok(alice, "push")  # the data travels
    register(alice, 0.5)  # a model version whose object Alice keeps to herself
    git(alice, "push", "-q", "origin", "main", "--tags")
    git(bob, "pull", "-q", "origin", "main", "--tags")
    ok(bob, "pull")
    assert (bob / "data.csv").read_text() == "a,b\n1,2\n"
    assert json.loads(ok(bob, "status", "--json"))["data"][0]["workspace"] == "unchanged"
    ok(bob, "push")  # nor does Bob's push trip over Alice's model
