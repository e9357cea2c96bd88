"""Remotes: configuration, push / fetch / pull to a local folder and to S3 (moto), bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from blake3 import blake3

from mlops.core.repo import Repo
from mlops.remote.backend import LocalBackend
from mlops.remote.config import RemoteSpec
from mlops.remote.transfer import remote_has
from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.remote import files_of, make_data, s3_remote, track
from tests.helpers.repos import clone, git
from tests.helpers.servers import free_port, start_moto


def cache_objects(repo: Path) -> set[str]:
    cache = repo / ".mlops" / "cache"
    return {
        p.parent.name + p.name
        for p in cache.glob("*/*")
        if len(p.parent.name) == 2 and not p.name.startswith(".")
    }


def remote_objects(root: Path) -> dict[str, bytes]:
    """Objects visible on a local-folder remote: loose ones and the packed ones, by id."""
    found = {}
    for path in root.glob("*/*"):
        if len(path.parent.name) == 2 and not path.name.startswith("."):
            found[path.parent.name + path.name] = path.read_bytes()
    for idx in (root / "packs").glob("*.idx"):
        pack = (root / "packs" / (idx.stem + ".pack")).read_bytes()
        for oid, offset, size in json.loads(idx.read_bytes())["objects"]:
            found[oid] = pack[offset : offset + size]
    return found


def assert_sound(objects: dict[str, bytes]) -> None:
    """Every visible object's bytes hash to its id: nothing partial is visible."""
    for oid, data in objects.items():
        assert blake3(data).hexdigest() == oid.removesuffix(".dir"), oid


@pytest.fixture
def shared(tmp_path: Path, repo: Path) -> Path:
    """A repository with data committed and a default local-folder remote ``../store``."""
    make_data(repo)
    track(repo, "data/images", "data/models", "data/labels.csv")
    result = run_cli(repo, "remote", "add", "origin", "../store", "--default")
    assert result.exit_code == 0, result.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "remote")
    return repo


# Configuration --------------------------------------------------------------------------


def test_remote_add_list_modify_remove(repo: Path) -> None:
    assert run_cli(repo, "remote", "add", "origin", "s3://bucket/path", "--default").exit_code == 0
    assert run_cli(repo, "remote", "add", "backup", "../backup").exit_code == 0
    modified = run_cli(repo, "remote", "modify", "origin", "endpoint_url", "http://127.0.0.1:9")
    assert modified.exit_code == 0, modified.stderr
    listed = json.loads(run_cli(repo, "remote", "list", "--json").stdout)
    assert listed == [
        {"name": "backup", "url": "../backup", "default": False},
        {
            "name": "origin",
            "url": "s3://bucket/path",
            "default": True,
            "endpoint_url": "http://127.0.0.1:9",
        },
    ]
    text = run_cli(repo, "remote", "list").stdout
    assert "origin\ts3://bucket/path (default)" in text
    assert run_cli(repo, "remote", "remove", "origin").exit_code == 0
    config = (repo / ".mlops" / "config.yaml").read_text()
    assert "origin" not in config and "backup" in config


def test_relative_folder_url_is_relative_to_the_root(repo: Path) -> None:
    sub = repo / "sub"
    sub.mkdir()
    assert run_cli(sub, "remote", "add", "here", "../../store").exit_code == 0
    listed = json.loads(run_cli(repo, "remote", "list", "--json").stdout)
    assert listed[0]["url"] == "../store"


def test_secrets_only_with_local_and_never_shown(repo: Path) -> None:
    secret = "SuperSecret-0123456789"
    run_cli(repo, "remote", "add", "s3r", "s3://bucket/x", "--default")
    refused = run_cli(repo, "remote", "modify", "s3r", "secret_access_key", secret)
    assert refused.exit_code == 1
    assert "--local" in refused.stderr and secret not in refused.stderr + refused.stdout
    assert secret not in (repo / ".mlops" / "config.yaml").read_text()
    ok = run_cli(repo, "remote", "modify", "s3r", "secret_access_key", secret, "--local")
    assert ok.exit_code == 0 and secret not in ok.stdout
    assert secret in (repo / ".mlops" / "config.local.yaml").read_text()
    assert secret not in (repo / ".mlops" / "config.yaml").read_text()
    assert (repo / ".mlops" / "config.local.yaml").stat().st_mode & 0o777 == 0o600
    for args in (["remote", "list"], ["remote", "list", "--json"]):
        shown = run_cli(repo, *args)
        assert secret not in shown.stdout and "***" in shown.stdout
    # A failing command does not leak it either.
    run_cli(repo, "remote", "modify", "s3r", "endpoint_url", f"http://127.0.0.1:{free_port()}")
    failed = run_subprocess(repo, "push")
    assert failed.returncode == 1 and secret not in failed.stderr + failed.stdout


def test_url_with_password_needs_local(repo: Path) -> None:
    url = "ssh://user:pa55word-xyz@example.com/data"
    refused = run_cli(repo, "remote", "add", "box", url)
    assert refused.exit_code == 1 and "pa55word-xyz" not in refused.stderr
    assert run_cli(repo, "remote", "add", "box", url, "--local").exit_code == 0
    listed = run_cli(repo, "remote", "list").stdout
    assert "pa55word-xyz" not in listed and "user:***@example.com" in listed


def test_bad_remote_names_and_duplicates(repo: Path) -> None:
    bad = run_cli(repo, "remote", "add", "a.b", "../x")
    assert bad.exit_code == 1 and "invalid remote name 'a.b'" in bad.stderr
    run_cli(repo, "remote", "add", "a", "../x")
    dup = run_cli(repo, "remote", "add", "a", "../y")
    assert dup.exit_code == 1 and "remote 'a' already exists" in dup.stderr
    scheme = run_cli(repo, "remote", "add", "c", "nosuchscheme://x/y")
    assert scheme.exit_code == 1 and "unknown URL scheme 'nosuchscheme'" in scheme.stderr
    for args in (["remove", "zz"], ["modify", "zz", "url", "../q"]):
        result = run_cli(repo, "remote", *args)
        assert result.exit_code == 1 and "unknown remote 'zz'" in result.stderr


# Local folder remote ----------------------------------------------------------------------


def test_team_flow_local_folder(tmp_path: Path, shared: Path) -> None:
    pushed = run_cli(shared, "push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    summary = json.loads(pushed.stdout)
    needed = cache_objects(shared)
    assert summary["objects"] == len(needed) and summary["packs"] == 1
    assert_sound(remote_objects(tmp_path / "store"))
    assert set(remote_objects(tmp_path / "store")) == needed
    # The colleague: clone, one command, identical data, clean status.
    other = clone(shared, tmp_path / "colleague")
    pulled = run_subprocess(other, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "fetched" in pulled.stdout and "checked out" in pulled.stdout
    assert files_of(other) == files_of(shared)
    status = run_subprocess(other, "status", "--exit-code")
    assert status.returncode == 0, status.stdout + status.stderr
    # Pulling again moves nothing.
    again = json.loads(run_cli(other, "pull", "--json").stdout)
    assert again["fetch"]["objects"] == 0 and again["fetch"]["present"] == len(needed)


def test_push_sends_only_what_the_remote_lacks(tmp_path: Path, shared: Path) -> None:
    first = json.loads(run_cli(shared, "push", "--json").stdout)
    second = json.loads(run_cli(shared, "push", "--json").stdout)
    assert second["objects"] == 0 and second["present"] == first["objects"]
    (shared / "data" / "images" / "0" / "new.png").write_bytes(os.urandom(500))
    track(shared, "data/images", message="one more image")
    third = json.loads(run_cli(shared, "push", "--json").stdout)
    # The new file and the new manifest: loose, too few for a pack.
    assert third["objects"] == 2 and third["packs"] == 0
    assert_sound(remote_objects(tmp_path / "store"))


def test_fetch_limited_to_paths(tmp_path: Path, shared: Path) -> None:
    assert run_cli(shared, "push").exit_code == 0
    other = clone(shared, tmp_path / "colleague")
    fetched = run_cli(other, "fetch", "data/models", "--json")
    assert fetched.exit_code == 0, fetched.stderr
    status = json.loads(run_cli(other, "status", "--json").stdout)["data"]
    by_path = {s["path"]: s for s in status}
    assert by_path["data/models"]["cache"] == "ok"
    assert by_path["data/images"]["cache"] == "missing"
    pulled = run_cli(other, "pull", "data/models")
    assert pulled.exit_code == 0, pulled.stderr
    assert not (other / "data" / "images").exists()
    assert files_of(other, "data/models") == files_of(shared, "data/models")


def test_loose_layout_without_packs(tmp_path: Path, shared: Path) -> None:
    assert run_cli(shared, "remote", "modify", "origin", "pack", "false").exit_code == 0
    assert run_cli(shared, "push").exit_code == 0
    store = tmp_path / "store"
    assert not list((store / "packs").glob("*")) if (store / "packs").exists() else True
    assert set(remote_objects(store)) == cache_objects(shared)
    other = clone(shared, tmp_path / "colleague")
    run_cli(other, "remote", "modify", "origin", "pack", "false")
    assert run_cli(other, "pull").exit_code == 0
    assert files_of(other) == files_of(shared)


def test_progress_reports_objects_and_bytes(shared: Path) -> None:
    from mlops.flows.roots import push

    seen: dict[str, tuple[int, int]] = {}

    def report(task: str, done: int, total: int) -> None:
        seen[task] = (done, total)

    result = push(Repo(shared), progress=report)
    assert seen["pushing objects"] == (result.objects, result.objects)
    done, total = seen["pushing MiB"]
    assert done == total >= 1


def test_remote_has_asks_or_lists(tmp_path: Path) -> None:
    root = tmp_path / "store"
    backend = LocalBackend(RemoteSpec("t", str(root)), root, ["copy"])
    present = [blake3(str(i).encode()).hexdigest() for i in range(300)]
    absent = [blake3(f"x{i}".encode()).hexdigest() for i in range(300)]
    for oid in present:
        backend.write(f"{oid[:2]}/{oid[2:]}", b"x")
    for wanted in (present[:5] + absent[:5], present + absent):  # asking, then listing
        assert remote_has(backend, wanted, jobs=4) == set(wanted) & set(present)


def test_interrupted_local_push_leaves_nothing_partial(tmp_path: Path, repo: Path) -> None:
    make_data(repo, small=40, big=0)
    (repo / "data" / "models" / "huge.bin").write_bytes(os.urandom(96 << 20))
    track(repo, "data/images", "data/models", "data/labels.csv")
    run_cli(repo, "remote", "add", "origin", "../store", "--default")
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "push", "-j", "1"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.endswith(".tmp") for p in store.glob("*/.*")):
            break  # the big object is being copied: kill the push now
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = remote_objects(store) if store.exists() else {}
    assert_sound(visible)
    rerun = json.loads(run_cli(repo, "push", "--json").stdout)
    needed = cache_objects(repo)
    assert rerun["objects"] == len(needed - set(visible))
    assert set(remote_objects(store)) == needed


# Bad input ---------------------------------------------------------------------------------


def test_unknown_remote_name(shared: Path) -> None:
    for command in ("push", "pull", "fetch"):
        result = run_cli(shared, command, "-r", "nope")
        assert result.exit_code == 1
        assert "unknown remote 'nope' (configured: origin)" in result.stderr


def test_no_default_remote(repo: Path) -> None:
    make_data(repo, small=3, big=0)
    track(repo, "data/images")
    run_cli(repo, "remote", "add", "a", "../a")
    result = run_subprocess(repo, "push")
    assert result.returncode == 1
    assert "no default remote (configured: a)" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_backend_names_the_extra(shared: Path) -> None:
    try:  # gcsfs is deliberately not a test dependency
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    run_cli(shared, "remote", "add", "gcs", "gs://bucket/path")
    result = run_cli(shared, "push", "-r", "gcs")
    assert result.exit_code == 1
    assert "pip install 'mlops[gs]'" in result.stderr


def test_corrupt_objects_on_the_remote_are_dropped(tmp_path: Path, shared: Path) -> None:
    assert run_cli(shared, "push").exit_code == 0
    store = tmp_path / "store"
    loose = next(p for p in store.glob("*/*") if len(p.parent.name) == 2)
    loose.chmod(0o644)
    loose.write_bytes(b"not what it should be")
    pack = next((store / "packs").glob("*.pack"))
    index = json.loads(pack.with_suffix(".idx").read_bytes())["objects"]
    bad_packed, offset, _size = next(row for row in index if not row[0].endswith(".dir"))
    data = bytearray(pack.read_bytes())
    data[offset] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    other = clone(shared, tmp_path / "colleague")
    result = run_subprocess(other, "fetch")
    assert result.returncode == 1
    assert "2 object(s) did not match their id and were dropped" in result.stderr
    assert result.stderr.count("\n") == 1
    have = cache_objects(other)
    bad_loose = loose.parent.name + loose.name
    assert bad_loose not in have and bad_packed not in have
    assert have == cache_objects(shared) - {bad_loose, bad_packed}
    # Nothing half-done: a pull refuses to check out and the workspace stays empty.
    assert run_cli(other, "pull").exit_code == 1
    assert not (other / "data" / "images").exists()


def test_manifest_naming_a_path_outside_the_repository(tmp_path: Path, repo: Path) -> None:
    from mlops.storage.pointer import Pointer

    evil = b"owned\n"
    evil_oid = blake3(evil).hexdigest()
    manifest = json.dumps(
        {
            "algo": "blake3",
            "fields": ["path", "hash", "size", "exec"],
            "files": [["../../escaped.txt", evil_oid, len(evil), 0]],
        },
        separators=(",", ":"),
    ).encode()
    manifest_oid = blake3(manifest).hexdigest() + ".dir"
    store = tmp_path / "store"
    for oid, data in ((evil_oid, evil), (manifest_oid, manifest)):
        (store / oid[:2]).mkdir(parents=True, exist_ok=True)
        (store / oid[:2] / oid[2:]).write_bytes(data)
    (repo / "data.mlops").write_text(Pointer("data", manifest_oid, len(evil), 1).to_text())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a pointer from someone else")
    run_cli(repo, "remote", "add", "origin", "../store", "--default")
    result = run_subprocess(repo, "pull")
    assert result.returncode == 1
    assert "invalid entry '../../escaped.txt'" in result.stderr
    assert "outside the repository" in result.stderr
    assert manifest_oid not in cache_objects(repo)
    assert not (tmp_path / "escaped.txt").exists() and not (repo / "data").exists()


# S3 (moto server on 127.0.0.1) -----------------------------------------------------------


def s3fs_for(endpoint: str):  # type: ignore[no-untyped-def]
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint, key="testing", secret="testing", skip_instance_cache=True
    )


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None, request: pytest.FixtureRequest) -> str:
    """A new, empty bucket on the moto server."""
    name = "t-" + blake3(request.node.nodeid.encode()).hexdigest()[:20]
    s3fs_for(s3_endpoint).mkdir(name)
    return name


def s3_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Objects visible in the bucket's store (loose and packed), by id."""
    fs = s3fs_for(endpoint)
    found = {}
    for key in fs.find(f"{bucket}/store"):
        rel = key.split("/store/", 1)[1]
        if rel.startswith("packs/") and rel.endswith(".idx"):
            pack = fs.cat_file(key[: -len(".idx")] + ".pack")
            for oid, offset, size in json.loads(fs.cat_file(key))["objects"]:
                found[oid] = pack[offset : offset + size]
        elif not rel.startswith("packs/"):
            found[rel.replace("/", "")] = fs.cat_file(key)
    return found


def test_team_flow_s3(tmp_path: Path, repo: Path, bucket: str, s3_endpoint: str) -> None:
    make_data(repo)
    track(repo, "data/images", "data/models", "data/labels.csv")
    s3_remote(repo, bucket, s3_endpoint)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "remote")
    pushed = run_subprocess(repo, "push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["objects"] == len(cache_objects(repo))
    on_s3 = s3_objects(s3_endpoint, bucket)
    assert_sound(on_s3)
    assert set(on_s3) == cache_objects(repo)
    assert json.loads(run_cli(repo, "push", "--json").stdout)["objects"] == 0
    other = clone(repo, tmp_path / "colleague")
    fetched = run_cli(other, "fetch", "--json")
    assert fetched.exit_code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["objects"] == len(cache_objects(repo))
    pulled = run_subprocess(other, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert files_of(other) == files_of(repo)
    assert run_subprocess(other, "status", "--exit-code").returncode == 0


def test_unreachable_endpoint_fails_fast(repo: Path, aws_env: None) -> None:
    make_data(repo, small=3, big=0)
    track(repo, "data/images")
    url = f"http://127.0.0.1:{free_port()}"
    s3_remote(repo, "bucket", url)
    start = time.monotonic()
    result = run_subprocess(repo, "push")
    assert time.monotonic() - start < 20
    assert result.returncode == 1
    assert f"cannot connect to {url}" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_bucket(repo: Path, s3_endpoint: str, aws_env: None) -> None:
    make_data(repo, small=3, big=0)
    track(repo, "data/images")
    s3_remote(repo, "no-such-bucket", s3_endpoint)
    for command in ("push", "fetch"):
        result = run_cli(repo, command)
        assert result.exit_code == 1
        assert "the bucket 'no-such-bucket' does not exist" in result.stderr


def test_wrong_credentials(repo: Path, aws_env: None) -> None:
    # A second server that checks every request's credentials (none are valid).
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        make_data(repo, small=3, big=0)
        track(repo, "data/images")
        s3_remote(repo, "bucket", url)
        result = run_subprocess(repo, "push")
        assert result.returncode == 1
        assert "access denied" in result.stderr and "credentials" in result.stderr
        assert "testing" not in result.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_corrupt_object_on_s3_is_dropped(
    tmp_path: Path, shared: Path, bucket: str, s3_endpoint: str
) -> None:
    s3_remote(shared, bucket, s3_endpoint, name="s3")
    assert run_cli(shared, "push", "-r", "s3").exit_code == 0
    fs = s3fs_for(s3_endpoint)
    loose = next(k for k in fs.find(f"{bucket}/store") if "/packs/" not in k)
    fs.pipe_file(loose, b"garbage")
    oid = "".join(loose.split("/store/", 1)[1].split("/"))
    result = run_cli(shared, "fetch", "-r", "s3")
    assert result.exit_code == 0  # the local cache already has everything
    other = clone(shared, tmp_path / "colleague")
    s3_remote(other, bucket, s3_endpoint, name="s3b")
    failed = run_cli(other, "fetch", "-r", "s3b")
    assert failed.exit_code == 1
    assert f"1 object(s) did not match their id and were dropped (first: {oid}" in failed.stderr
    assert oid not in cache_objects(other)


class CuttingProxy:
    """A TCP proxy to a local port that cuts the network once ``limit`` bytes went upstream."""

    def __init__(self, target: int, limit: int) -> None:
        self.target, self.limit, self.sent = target, limit, 0
        self.cut = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for src, dst, count in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, count), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while not self.cut.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    with self.lock:
                        self.sent += len(data)
                        if self.sent > self.limit:
                            self.cut.set()
                            self.server.close()  # new connections are refused from now on
                            break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_network_cut_in_the_middle_of_a_push(
    tmp_path: Path, repo: Path, bucket: str, s3_endpoint: str
) -> None:
    make_data(repo, small=60, big=8)
    track(repo, "data/images", "data/models", "data/labels.csv")
    proxy = CuttingProxy(int(s3_endpoint.rsplit(":", 1)[1]), limit=1_200_000)
    via_proxy = f"http://127.0.0.1:{proxy.port}"
    s3_remote(repo, bucket, via_proxy)
    start = time.monotonic()
    cut = run_subprocess(repo, "push", "-j", "2")
    assert time.monotonic() - start < 30
    assert cut.returncode == 1
    assert f"cannot connect to {via_proxy}" in cut.stderr
    assert "run `mlops push` again to move the rest" in cut.stderr
    visible = s3_objects(s3_endpoint, bucket)
    assert_sound(visible)
    needed = cache_objects(repo)
    assert visible and set(visible) < needed
    # The network is back: the rerun sends only what did not arrive.
    run_cli(repo, "remote", "modify", "origin", "endpoint_url", s3_endpoint)
    rerun = json.loads(run_cli(repo, "push", "--json").stdout)
    assert rerun["objects"] == len(needed - set(visible))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "remote")
    other = clone(repo, tmp_path / "colleague")
    assert run_cli(other, "pull").exit_code == 0
    assert files_of(other) == files_of(repo)


def test_network_cut_in_the_middle_of_a_fetch(
    tmp_path: Path, repo: Path, bucket: str, s3_endpoint: str
) -> None:
    make_data(repo, small=60, big=8)
    track(repo, "data/images", "data/models", "data/labels.csv")
    s3_remote(repo, bucket, s3_endpoint)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "remote")
    assert run_cli(repo, "push").exit_code == 0
    other = clone(repo, tmp_path / "colleague")
    proxy = CuttingProxy(int(s3_endpoint.rsplit(":", 1)[1]), limit=6_000)
    run_cli(other, "remote", "modify", "origin", "endpoint_url", f"http://127.0.0.1:{proxy.port}")
    cut = run_cli(other, "fetch", "-j", "2")
    assert cut.exit_code == 1 and "cannot connect to" in cut.stderr
    partial = cache_objects(other)
    assert_sound(
        {oid: (other / ".mlops/cache" / oid[:2] / oid[2:]).read_bytes() for oid in partial}
    )
    assert not [p for p in (other / ".mlops/cache").glob("*/.*")]  # no temporaries left
    run_cli(other, "remote", "modify", "origin", "endpoint_url", s3_endpoint)
    rest = json.loads(run_cli(other, "pull", "--json").stdout)
    assert rest["fetch"]["objects"] == len(cache_objects(repo)) - len(partial)
    assert files_of(other) == files_of(repo)


def test_fetch_objects_brings_exactly_the_named_objects(tmp_path: Path, shared: Path) -> None:
    from mlops.remote.transfer import fetch_objects

    assert run_cli(shared, "push").exit_code == 0
    other = clone(shared, tmp_path / "colleague")
    wanted = sorted(cache_objects(shared))[:3]
    result = fetch_objects(Repo(other), wanted)
    assert result.objects == 3 and cache_objects(other) == set(wanted)


@pytest.mark.parametrize("links", ["[copy]", "[hardlink, copy]"])
def test_local_remote_shares_bytes_only_when_hardlinks_are_allowed(
    tmp_path: Path, shared: Path, links: str
) -> None:
    assert run_cli(shared, "config", "cache.link", links).exit_code == 0
    assert run_cli(shared, "remote", "modify", "origin", "pack", "false").exit_code == 0
    assert run_cli(shared, "push").exit_code == 0
    oid = next(iter(cache_objects(shared)))
    remote_file = tmp_path / "store" / oid[:2] / oid[2:]
    cache_file = shared / ".mlops" / "cache" / oid[:2] / oid[2:]
    shared_inode = remote_file.stat().st_ino == cache_file.stat().st_ino
    assert shared_inode == (links != "[copy]")
    assert not remote_file.stat().st_mode & 0o222
    other = clone(shared, tmp_path / "colleague")
    assert run_cli(other, "pull").exit_code == 0
    assert files_of(other) == files_of(shared)
    assert run_cli(other, "status", "--exit-code").exit_code == 0


def test_object_writer_stores_read_only_objects_known_to_the_state(tmp_path: Path) -> None:
    from mlops.remote.writer import ObjectWriter, _write_renamed
    from mlops.storage.cache import Cache
    from mlops.storage.state import StateCache

    cache = Cache(tmp_path / "cache", StateCache(tmp_path / "state.db"))
    data = os.urandom(3000)
    oid = blake3(data).hexdigest()
    with ObjectWriter(cache) as writer:
        writer.write(oid, data)
        writer.write(oid, data)  # already there: fine
    path = Path(cache.path(oid))
    assert path.read_bytes() == data and not path.stat().st_mode & 0o222
    assert cache.state.get(path.stat()) == oid
    # The portable way (a temporary name, then a rename) leaves no temporary behind.
    other = tmp_path / "plain" / "object"
    other.parent.mkdir()
    st = _write_renamed(cache.temp_path(), str(other), data)
    assert other.read_bytes() == data and st.st_ino == other.stat().st_ino
    assert [p.name for p in other.parent.iterdir()] == ["object"]
    assert not list((tmp_path / "cache" / "tmp").iterdir())
