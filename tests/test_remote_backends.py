"""Every back end from its URL, against a real server on 127.0.0.1: S3 (moto), Azure
(Azurite), SSH (OpenSSH's sshd). Push, a fresh clone, pull, byte-identical; an
unreachable server fails in seconds in one line naming it; missing credentials say
which options to set."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import ok, run_cli, run_subprocess
from tests.helpers.remote import files_of, make_data, s3_remote, track
from tests.helpers.repos import clone
from tests.helpers.servers import AzureServer, SshServer, free_port


def team_flow(tmp_path: Path, repo: Path) -> None:
    """Push from ``repo`` (its default remote set), clone it, pull: the same files."""
    make_data(repo, small=30, big=1)
    track(repo, "data/images", "data/models", "data/labels.csv")  # commits the remote too
    pushed = run_subprocess(repo, "push")
    assert pushed.returncode == 0, pushed.stderr
    other = clone(repo, tmp_path / "colleague")
    for key, value in local_settings(repo).items():  # per-machine settings do not travel
        ok(other, "remote", "modify", "origin", key, value, "--local")
    pulled = run_subprocess(other, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert files_of(other) == files_of(repo)
    assert run_subprocess(other, "status", "--exit-code").returncode == 0


def local_settings(repo: Path) -> dict[str, str]:
    import yaml

    path = repo / ".mlops" / "config.local.yaml"
    if not path.exists():
        return {}
    remote = (yaml.safe_load(path.read_text()) or {}).get("remote", {}).get("origin", {})
    return {k: str(v) for k, v in remote.items()}


def assert_fast_one_line(result_stderr: str, started: float, *words: str) -> None:
    assert time.monotonic() - started < 15, "took too long"
    assert result_stderr.count("\n") == 1, result_stderr
    for word in words:
        assert word in result_stderr, result_stderr


# SSH ---------------------------------------------------------------------------------------


def ssh_remote(
    repo: Path,
    server: SshServer,
    port: int | None = None,
    folder: str = "",
    known_hosts: Path | None = None,
) -> None:
    where = folder or str(repo.parent / "ssh-store")
    url = f"ssh://{server.user}@127.0.0.1:{port or server.port}{where}"
    ok(repo, "remote", "add", "origin", url, "--default")
    ok(repo, "remote", "modify", "origin", "client_keys", f"[{server.key}]")
    ok(repo, "remote", "modify", "origin", "known_hosts", str(known_hosts or server.known_hosts))


def test_team_flow_ssh(tmp_path: Path, repo: Path, sshd: SshServer) -> None:
    ssh_remote(repo, sshd)
    team_flow(tmp_path, repo)
    assert (tmp_path / "ssh-store" / "packs").is_dir()


def test_ssh_host_key_is_checked_against_known_hosts(
    tmp_path: Path, repo: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like OpenSSH: a server whose key is not known, or is not the key known for it (a
    machine in the middle), gets nothing; the user's ~/.ssh/known_hosts is the default."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    store = tmp_path / "ssh-store"
    # No known_hosts at all: refused in one line that says how to add the key.
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{store}"
    ok(repo, "remote", "add", "origin", url, "--default")
    ok(repo, "remote", "modify", "origin", "client_keys", f"[{sshd.key}]")
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert "host key of 127.0.0.1:" in result.stderr and "known_hosts" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not stored(store)
    # Another key known for that host and port: refused too.
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    impostor = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {impostor}\n")
    result = run_subprocess(repo, "push")
    assert result.returncode == 1 and "host key" in result.stderr
    assert not stored(store)
    # The server's own key in ~/.ssh/known_hosts: the push goes through.
    (home / ".ssh" / "known_hosts").write_bytes(sshd.known_hosts.read_bytes())
    assert run_subprocess(repo, "push").returncode == 0
    assert stored(store)


def stored(store: Path) -> list[Path]:
    """The files a remote folder holds."""
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


def test_ssh_url_user_host_and_port_are_used(repo: Path, sshd: SshServer) -> None:
    port = free_port()
    ssh_remote(repo, sshd, port=port)
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    started = time.monotonic()
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert_fast_one_line(result.stderr, started, f"cannot connect to 127.0.0.1:{port}")
    # The right port, a user the server does not know: refused, naming what to set.
    url = f"ssh://nobody-here@127.0.0.1:{sshd.port}{repo.parent}/s"
    ok(repo, "remote", "modify", "origin", "url", url)
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert "access denied" in result.stderr and "client_keys" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                held.append(listener.accept()[0])
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_ssh_timeout_option(
    repo: Path,
    sshd: SshServer,
    silent_server: int,
) -> None:
    ssh_remote(repo, sshd, port=silent_server)
    ok(repo, "remote", "modify", "origin", "timeout", "1")
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    started = time.monotonic()
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert time.monotonic() - started < 8
    assert f"127.0.0.1:{silent_server}" in result.stderr and "TimeoutError" in result.stderr


# Azure -------------------------------------------------------------------------------------


def azure_remote(repo: Path, server: AzureServer, container: str, port: int | None = None) -> None:
    ok(repo, "remote", "add", "origin", f"az://{container}/store", "--default")
    secret = server.connection_string(port)
    ok(repo, "remote", "modify", "origin", "connection_string", secret, "--local")


def test_team_flow_azure(tmp_path: Path, repo: Path, azurite: AzureServer) -> None:
    azurite.make_container("team")
    azure_remote(repo, azurite, "team")
    team_flow(tmp_path, repo)


def test_azure_missing_container_says_container(repo: Path, azurite: AzureServer) -> None:
    azure_remote(repo, azurite, "nothere")
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    result = run_cli(repo, "push")
    assert result.exit_code == 1
    assert "the container 'nothere' does not exist" in result.stderr
    assert "bucket" not in result.stderr


def test_azure_unreachable_fails_fast(repo: Path, azurite: AzureServer) -> None:
    port = free_port()
    azure_remote(repo, azurite, "team", port=port)
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    started = time.monotonic()
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert_fast_one_line(
        result.stderr, started, f"cannot connect to http://127.0.0.1:{port}/devstoreaccount1"
    )
    assert "Eby8vdM02" not in result.stderr  # the key never shows


def test_azure_without_credentials_names_the_options(repo: Path) -> None:
    pytest.importorskip("adlfs", reason="the azure extra (adlfs) is not installed")
    ok(repo, "remote", "add", "origin", "az://team/store", "--default")
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    result = run_cli(repo, "push")
    assert result.exit_code == 1
    assert "account_key, sas_token or connection_string" in result.stderr
    assert "--local" in result.stderr and result.stderr.count("\n") == 1


# S3 ----------------------------------------------------------------------------------------


def test_s3_without_credentials_names_the_options(
    repo: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the network
    s3_remote(repo, "bucket", s3_endpoint)
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    result = run_cli(repo, "push")
    assert result.exit_code == 1
    assert "no credentials found" in result.stderr
    assert "access_key_id and secret_access_key (or profile)" in result.stderr
    assert "mlops remote modify origin KEY VALUE --local" in result.stderr


def test_s3_timeout_option(repo: Path, aws_env: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    s3_remote(repo, "bucket", url)
    ok(repo, "remote", "modify", "origin", "timeout", "2")
    make_data(repo, small=2, big=0)
    track(repo, "data/images")
    started = time.monotonic()
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert_fast_one_line(result.stderr, started, f"cannot connect to {url} within 2 s")
    bad = run_cli(repo, "remote", "modify", "origin", "timeout", "soon")
    assert bad.exit_code == 1
    assert "remote.origin.timeout must be a number of seconds above 0, not 'soon'" in bad.stderr
