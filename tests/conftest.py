"""The suite's fixtures (the helpers they use are plain functions in ``tests/helpers``)."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.repos import init_git
from tests.helpers.servers import (
    AZURITE,
    SSHD,
    AzureServer,
    SshServer,
    free_port,
    start_moto,
    stop,
    wait_for_port,
)

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


# Servers on 127.0.0.1 for the remote tests -------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server (its own process) shared by the whole session."""
    proc, url = start_moto()
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """OpenSSH's sshd on a free 127.0.0.1 port, with its own host key and one user key."""
    if SSHD is None:
        pytest.skip("sshd is not installed (Debian package openssh-server; .ci/run installs it)")
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        pytest.skip("sshd needs its privilege separation folder /run/sshd (.ci/run makes it)")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (Debian package openssh-client)")
    pytest.importorskip("sshfs", reason="the ssh extra (sshfs) is not installed")
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True
        )
    (folder / "authorized_keys").write_bytes((folder / "user_key.pub").read_bytes())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(proc, port, "sshd")
        host_key = (folder / "host_key.pub").read_text().split()[:2]
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
        yield SshServer(port, getpass.getuser(), folder / "user_key", known_hosts)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """Azurite's blob service (the Azure Storage emulator) on a free 127.0.0.1 port."""
    if AZURITE is None:
        pytest.skip("azurite-blob is not installed (npm package azurite; .ci/run installs it)")
    pytest.importorskip("adlfs", reason="the azure extra (adlfs) is not installed")
    folder = tmp_path_factory.mktemp("azurite")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(folder), "--silent", "--skipApiVersionCheck", "--loose"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(proc, port, "azurite")
        yield AzureServer(port)
    finally:
        stop(proc)


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
