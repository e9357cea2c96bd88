"""Real servers on 127.0.0.1 for the remote back ends: moto's S3, OpenSSH's sshd, Azurite.

The session fixtures in ``tests/conftest.py`` start them; sshd and Azurite only when their
program is installed (``.ci/run`` installs them), otherwise the tests that need them are
skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None
)
AZURITE = shutil.which("azurite-blob")
# Azurite's built-in development account: a published, well-known key, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def start_moto(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m moto.server`` on a free 127.0.0.1 port; return it and its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    wait_for_port(proc, port, "the moto S3 server")
    return proc, f"http://127.0.0.1:{port}"


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
    known_hosts: Path  # a known_hosts file holding the server's host key


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
