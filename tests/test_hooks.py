"""Git hooks: install / uninstall with chaining, what each hook does, the pre-commit framework."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import run_cli
from tests.helpers.repos import git, init_git

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def hooks(repo: Path) -> Path:
    return repo / ".git" / "hooks"


def track_images(repo: Path, count: int = 5, message: str = "images") -> None:
    folder = repo / "data" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i}.png").write_bytes(os.urandom(200) + bytes([i]))
    assert run_cli(repo, "add", "data/images").exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def commit(repo: Path, message: str) -> subprocess.CompletedProcess[str]:
    """A real ``git commit`` (hooks run), with whatever is staged."""
    return subprocess.run(
        ["git", "commit", "--allow-empty", "-q", "-m", message],
        cwd=repo,
        capture_output=True,
        text=True,
    )


def write_hook(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_install_chains_existing_hooks_and_uninstall_restores_them(repo: Path) -> None:
    track_images(repo)
    old = 'echo old-hook-ran >> "$(git rev-parse --show-toplevel)/old.log"'
    write_hook(hooks(repo) / "pre-commit", old)
    original = (hooks(repo) / "pre-commit").read_bytes()
    result = run_cli(repo, "install-hooks", "--json")
    assert result.exit_code == 0, result.stderr
    actions = {c["hook"]: c["action"] for c in json.loads(result.stdout)}
    assert actions == {
        "post-checkout": "installed",
        "pre-commit": "chained",
        "pre-push": "installed",
    }
    assert (hooks(repo) / "pre-commit.pre-mlops").read_bytes() == original
    for name in ("pre-commit", "post-checkout", "pre-push"):
        assert os.access(hooks(repo) / name, os.X_OK)
    # Our hook runs the old one too.
    assert commit(repo, "clean").returncode == 0
    assert (repo / "old.log").read_text() == "old-hook-ran\n"
    # Installing again only updates ours, and keeps the chained hook.
    again = run_cli(repo, "install-hooks")
    assert again.exit_code == 0 and "updated" in again.stdout
    assert (hooks(repo) / "pre-commit.pre-mlops").read_bytes() == original
    removed = run_cli(repo, "install-hooks", "--uninstall")
    assert removed.exit_code == 0, removed.stderr
    assert (hooks(repo) / "pre-commit").read_bytes() == original
    assert not (hooks(repo) / "pre-commit.pre-mlops").exists()
    assert not (hooks(repo) / "pre-push").exists()
    assert not (hooks(repo) / "post-checkout").exists()


def test_a_failing_chained_hook_still_blocks_the_commit(repo: Path) -> None:
    write_hook(hooks(repo) / "pre-commit", "echo 'old hook says no' >&2; exit 3")
    assert run_cli(repo, "install-hooks").exit_code == 0
    result = commit(repo, "blocked")
    assert result.returncode != 0 and "old hook says no" in result.stderr


def test_uninstall_leaves_foreign_hooks_alone(repo: Path) -> None:
    write_hook(hooks(repo) / "pre-push", "exit 0")
    foreign = (hooks(repo) / "pre-push").read_bytes()
    result = run_cli(repo, "install-hooks", "--uninstall")
    assert result.exit_code == 0
    assert "not mlops's hook; left alone" in result.stdout
    assert (hooks(repo) / "pre-push").read_bytes() == foreign


def test_install_refuses_when_both_a_foreign_hook_and_a_kept_one_exist(repo: Path) -> None:
    write_hook(hooks(repo) / "pre-commit", "exit 0")
    write_hook(hooks(repo) / "pre-commit.pre-mlops", "exit 0")
    result = run_cli(repo, "install-hooks")
    assert result.exit_code == 1
    assert "pre-commit.pre-mlops exists too" in result.stderr
    assert not (hooks(repo) / "pre-push").exists()  # nothing was changed


def test_hooks_path_is_honoured(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", "githooks")
    assert run_cli(repo, "install-hooks").exit_code == 0
    assert (repo / "githooks" / "pre-commit").exists()


def test_pre_commit_refuses_data_changed_without_its_pointer(repo: Path) -> None:
    track_images(repo)
    assert run_cli(repo, "install-hooks").exit_code == 0
    assert commit(repo, "clean").returncode == 0
    changed = repo / "data" / "images" / "1.png"
    changed.unlink()
    changed.write_bytes(b"edited")
    refused = commit(repo, "stale pointer")
    assert refused.returncode == 1
    assert (
        "mlops: data/images changed but its pointer data/images.mlops was not updated; "
        "run `mlops add data/images` and `git add data/images.mlops`"
    ) in refused.stderr
    assert run_cli(repo, "add", "data/images").exit_code == 0
    git(repo, "add", "data/images.mlops")
    assert commit(repo, "pointer updated").returncode == 0


def test_pre_commit_ignores_data_not_in_the_workspace(repo: Path) -> None:
    track_images(repo)
    shutil.rmtree(repo / "data" / "images")
    assert run_cli(repo, "install-hooks").exit_code == 0
    assert commit(repo, "data not pulled").returncode == 0


def test_hook_entry_points_through_the_cli(repo: Path) -> None:
    track_images(repo)
    assert run_cli(repo, "hook", "pre-commit").exit_code == 0
    (repo / "data" / "images" / "new.png").write_bytes(b"new")
    result = run_cli(repo, "hook", "pre-commit")
    assert result.exit_code == 1 and "data/images changed" in result.stderr


def test_hooks_do_nothing_outside_an_mlops_repository(git_repo: Path) -> None:
    for name in ("pre-commit", "post-checkout", "pre-push"):
        result = subprocess.run(
            [sys.executable, "-m", "mlops._githook", name],
            cwd=git_repo,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stderr


def test_post_checkout_switches_the_data_with_the_branch(repo: Path) -> None:
    track_images(repo, message="v1")
    v1 = {p.name: p.read_bytes() for p in (repo / "data" / "images").iterdir()}
    git(repo, "checkout", "-q", "-b", "v2")
    track_images(repo, count=3, message="v2")
    v2 = {p.name: p.read_bytes() for p in (repo / "data" / "images").iterdir()}
    assert run_cli(repo, "install-hooks").exit_code == 0
    git(repo, "checkout", "-q", "main")
    assert {p.name: p.read_bytes() for p in (repo / "data" / "images").iterdir()} == v1
    git(repo, "checkout", "-q", "v2")
    assert {p.name: p.read_bytes() for p in (repo / "data" / "images").iterdir()} == v2


def test_pre_push_pushes_the_data_to_the_default_remote(tmp_path: Path, repo: Path) -> None:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    track_images(repo)
    assert run_cli(repo, "install-hooks").exit_code == 0
    # No default mlops remote yet: the push is refused, with the reason.
    refused = subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=repo, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "no default remote" in refused.stderr
    assert run_cli(repo, "remote", "add", "store", "../store", "--default").exit_code == 0
    pushed = subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=repo, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "mlops: pushed 6 object(s) to remote 'store'" in pushed.stderr
    assert list((tmp_path / "store").iterdir())


def test_pre_commit_framework_runs_the_shipped_hooks(tmp_path: Path, repo: Path) -> None:
    """The shipped .pre-commit-hooks.yaml, used by the real pre-commit package, offline.

    ``language: python`` would build a virtualenv and install mlops and its
    dependencies from the network; the consumer overrides it to ``system`` so the
    test runs offline, using the ``mlops`` of this environment (on PATH).
    """
    pytest.importorskip("pre_commit")
    shipped = yaml.safe_load((PROJECT_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(shipped, list)
    ids = {hook["id"] for hook in shipped}
    assert {"mlops-pre-commit", "mlops-post-checkout", "mlops-pre-push"} <= ids
    source = init_git(tmp_path / "hooks-source")
    shutil.copy(PROJECT_ROOT / ".pre-commit-hooks.yaml", source)
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "hooks")
    rev = git(source, "rev-parse", "HEAD").strip()
    config = {
        "repos": [
            {
                "repo": str(source),
                "rev": rev,
                "hooks": [{"id": "mlops-pre-commit", "language": "system"}],
            }
        ]
    }
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    track_images(repo)
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=repo, env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    ok = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "clean"],
        cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "mlops data pointers are up to date" in ok.stdout + ok.stderr
    (repo / "data" / "images" / "0.png").unlink()
    refused = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "stale"],
        cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "data/images changed but its pointer data/images.mlops was not updated" in (
        refused.stdout + refused.stderr
    )
