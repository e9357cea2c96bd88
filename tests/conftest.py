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
    from mlops.cli import load_app

    app = load_app()

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
        [sys.executable, "-m", "mlops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def set_state_aside(repo: Path) -> Path:
    """Move the state database (with its WAL files) aside: commands then know nothing."""
    aside = repo.parent / "state-aside"
    aside.mkdir(exist_ok=True)
    for path in (repo / ".mlops").glob("state.db*"):
        path.rename(aside / path.name)
    return aside


def put_state_back(repo: Path, aside: Path) -> None:
    for path in (repo / ".mlops").glob("state.db*"):
        path.unlink()
    for path in aside.iterdir():
        path.rename(repo / ".mlops" / path.name)


# Variables through which the user's Git setup would reach the tests' repositories.
_GIT_ENV = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_TEMPLATE_DIR",
    "GIT_EXEC_PATH",
    "EMAIL",
)
# What every test's Git sees instead of ~/.gitconfig: the defaults the tests rely on.
_GLOBAL_GITCONFIG = """\
[user]
\tname = Test
\temail = test@example.com
[init]
\tdefaultBranch = main
[commit]
\tgpgsign = false
[tag]
\tgpgsign = false
[protocol "file"]
\tallow = always
"""


@pytest.fixture(scope="session", autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs with its own HOME and Git global config, no system config, and no
    identity from the environment: the user's ~/.gitconfig (hooksPath, gpgsign, pull.rebase,
    defaultBranch) and GIT_AUTHOR_*/GIT_COMMITTER_* never reach a test."""
    home = tmp_path_factory.mktemp("home")
    config = home / ".gitconfig"
    config.write_text(_GLOBAL_GITCONFIG)
    with pytest.MonkeyPatch.context() as patch:
        for name in _GIT_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        patch.setenv("GIT_CONFIG_GLOBAL", str(config))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield home


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


# S3 for the remote tests: moto's standalone server on 127.0.0.1 ------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m moto.server`` on a free 127.0.0.1 port; return it and its URL."""
    import socket
    import time

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the moto S3 server did not start") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server (its own process) shared by the whole session."""
    proc, url = start_moto()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy AWS credentials; no profile or config file of this machine is read."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
