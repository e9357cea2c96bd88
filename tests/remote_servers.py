"""Real servers on 127.0.0.1 for the remote back ends: OpenSSH's sshd and Azurite.

Each is started by the test session when its program is installed (``.ci/run``
installs them); otherwise the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None
)
AZURITE = shutil.which("azurite-blob")
# Azurite's built-in development account: a published, well-known key, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def wait_for_port(proc: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{what} did not start: {err.strip()[-300:]}") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    key: Path  # the client's private key


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
        yield SshServer(port, getpass.getuser(), folder / "user_key")
    finally:
        stop(proc)


@dataclass(frozen=True)
class AzureServer:
    port: int

    def connection_string(self, port: int | None = None) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port or self.port}/{AZURITE_ACCOUNT};"
        )

    def make_container(self, name: str) -> None:
        from adlfs import AzureBlobFileSystem

        fs = AzureBlobFileSystem(connection_string=self.connection_string())
        fs.mkdir(name)


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
