"""Shared fixtures: real Git repositories in temporary folders and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner


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


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(cwd: Path, *args: str) -> CliResult:
    """Run the CLI through typer's test runner in ``cwd``."""
    from mlops.cli.app import app

    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_subprocess(cwd: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mlops`` as a real process in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args], cwd=cwd, capture_output=True, text=True,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty Git repository."""
    return init_git(tmp_path / "repo")


@pytest.fixture
def repo(git_repo: Path) -> Iterator[Path]:
    """A Git repository set up with ``mlops init``."""
    result = run_cli(git_repo, "init")
    assert result.exit_code == 0, result.stderr
    yield git_repo
