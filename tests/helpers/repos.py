"""Real Git repositories in temporary folders, and the state database beside them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its output; fail the test on error."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def init_git(path: Path) -> Path:
    """A new Git repository with a local identity."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    git(path, "config", "commit.gpgsign", "false")
    return path


def commit_all(repo: Path, message: str, *, allow_empty: bool = False) -> str:
    """Commit everything Git does not ignore; return the commit id.

    Without ``allow_empty`` a commit with nothing in it fails the test.
    """
    git(repo, "add", "-A")
    git(repo, "commit", "-q", *(["--allow-empty"] if allow_empty else []), "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def clone(source: Path, dest: Path) -> Path:
    """A clone of ``source`` at ``dest``, with a local identity."""
    git(source.parent, "clone", "-q", str(source), str(dest))
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "config", "user.name", "Test")
    return dest


def set_state_aside(repo: Path) -> Path:
    """Move the state database (with its WAL files) aside: commands then know nothing."""
    aside = repo.parent / "state-aside"
    aside.mkdir(exist_ok=True)
    for path in (repo / ".mlops").glob("state.db*"):
        path.rename(aside / path.name)
    return aside


def put_state_back(repo: Path, aside: Path) -> None:
    """Undo ``set_state_aside``."""
    for path in (repo / ".mlops").glob("state.db*"):
        path.unlink()
    for path in aside.iterdir():
        path.rename(repo / ".mlops" / path.name)
