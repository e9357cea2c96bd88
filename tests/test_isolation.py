"""The suite passes whatever the user's Git identity, environment and global config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_INNER = """
from tests.helpers.cli import run_cli
from tests.helpers.repos import git, init_git


def test_inner(tmp_path):
    repo = init_git(tmp_path / "repo")
    assert run_cli(repo, "init").exit_code == 0
    (repo / "a.txt").write_text("a\\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")  # no signing, no hooks from ~/.gitconfig
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "Test <test@example.com>|Test <test@example.com>"
    )
    fresh = tmp_path / "fresh"
    git(tmp_path, "init", "-q", str(fresh))
    assert git(fresh, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    seen = git(repo, "config", "--list")
    assert "hostile" not in seen.lower() and "rebase" not in seen and "hookspath" not in seen
"""


def test_a_hostile_git_setup_does_not_reach_the_tests(tmp_path: Path) -> None:
    """Run a small test through this suite's conftest with a hostile HOME and identity."""
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for hook in ("pre-commit", "commit-msg", "pre-push"):
        (hooks / hook).write_text("#!/bin/sh\necho hostile hook >&2\nexit 1\n")
        (hooks / hook).chmod(0o755)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Hostile\n\temail = hostile@example.org\n"
        "[commit]\n\tgpgsign = true\n[tag]\n\tgpgsign = true\n"
        "[init]\n\tdefaultBranch = trunk\n"
        f"[core]\n\thooksPath = {hooks}\n[pull]\n\trebase = true\n"
    )
    (tmp_path / "test_inner.py").write_text(_INNER)
    env = {
        **os.environ,
        "HOME": str(home),
        "PYTHONPATH": str(Path(__file__).parents[1]),
        "GIT_AUTHOR_NAME": "Env Author",
        "GIT_AUTHOR_EMAIL": "author@env.example",
        "GIT_COMMITTER_NAME": "Env Committer",
        "GIT_COMMITTER_EMAIL": "committer@env.example",
    }
    for name in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
