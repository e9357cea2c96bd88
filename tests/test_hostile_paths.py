"""Hostile input: crafted pointers, manifests, locks, packs and work trees from a
teammate's commit or a shared remote never make mlops write outside its place."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from blake3 import blake3

from tests.helpers.cli import run_cli
from tests.helpers.repos import git, init_git

# --- crafting what an attacker commits or pushes ---------------------------------------


def store_object(repo: Path, data: bytes, suffix: str = "") -> str:
    """Put raw bytes into the repository's cache as an object, as a fetch would."""
    oid = blake3(data).hexdigest() + suffix
    path = repo / ".mlops" / "cache" / oid[:2] / oid[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    return oid


def manifest_bytes(rows: list[tuple[str, str, int]]) -> bytes:
    files = [[path, oid, size, 0] for path, oid, size in rows]
    return json.dumps(
        {"algo": "blake3", "fields": ["path", "hash", "size", "exec"], "files": files},
        separators=(",", ":"),
    ).encode()


def write_pointer(repo: Path, pointer_file: str, path: str, oid: str, files: int = 1) -> None:
    (repo / pointer_file).parent.mkdir(parents=True, exist_ok=True)
    (repo / pointer_file).write_text(
        f"path: {json.dumps(path)}\nalgo: blake3\nhash: {oid}\nsize: 1\nfiles: {files}\n"
    )


def evil_folder(repo: Path, entry: str) -> str:
    """A committed pointer ``data.mlops`` whose manifest names ``entry`` beside a good file."""
    payload = store_object(repo, b"#!/bin/sh\necho owned > /tmp/owned\n")
    good = store_object(repo, b"fine\n")
    oid = store_object(repo, manifest_bytes([("ok.txt", good, 5), (entry, payload, 30)]), ".dir")
    write_pointer(repo, "data.mlops", "data", oid, files=2)
    git(repo, "add", "data.mlops")
    git(repo, "commit", "-q", "-m", "evil")
    return oid


# What mlops itself keeps in .mlops/ per machine, which any command may touch.
_OWN = ("lock", "state.db", "tmp", "cache")


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (symbolic links as their target text), for before/after,
    leaving out mlops's own lock, state and cache."""
    found: dict[str, bytes] = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            inside = rel.split(".mlops/", 1)[1] if ".mlops/" in rel else ""
            if inside.startswith(_OWN):
                continue
            found[rel] = os.readlink(path).encode() if os.path.islink(path) else b"<file>"
    return found


# --- paths in manifests -----------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        ".git/hooks/post-checkout",
        "sub/.git/config",
        "sub/.GIT/config",
        ".Git",
        ".mlops/config.yaml",
        "sub/.MLOPS/x",
        "../escape.txt",
        "sub/../../escape.txt",
        "/tmp/absolute.txt",
        "a//b",
        "a/./b",
        "trailing/",
        "nul\x00byte",
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_checkout_refuses_a_manifest_with_an_unsafe_path(
    repo: Path, entry: str, force: bool
) -> None:
    oid = evil_folder(repo, entry)
    before = snapshot_tree(repo.parent)
    result = run_cli(repo, "checkout", *(["--force"] if force else []))
    assert result.exit_code == 1
    assert f"manifest {oid} is corrupt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # Nothing was written anywhere: not the good file, not the bad one, not .git.
    assert snapshot_tree(repo.parent) == before
    assert not (repo / "data").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a.txt", 1), ("a.txt", 2)], "'a.txt' is listed twice"),
        ([("a", 1), ("a/b.txt", 2)], "'a' is both a file and a folder"),
        ([("x/a", 1), ("x/a-b", 3), ("x/a/b/c.txt", 2)], "'x/a' is both a file and a folder"),
    ],
)
def test_a_manifest_naming_a_path_twice_or_a_file_as_a_folder_is_corrupt(
    repo: Path, rows: list[tuple[str, int]], message: str
) -> None:
    objects = {n: store_object(repo, f"content {n}\n".encode()) for _, n in rows}
    oid = store_object(repo, manifest_bytes([(p, objects[n], 10) for p, n in rows]), ".dir")
    write_pointer(repo, "data.mlops", "data", oid, files=len(rows))
    result = run_cli(repo, "checkout", "--force")
    assert result.exit_code == 1
    assert f"manifest {oid} is corrupt: {message}" in result.stderr
    assert not (repo / "data").exists()


def test_fetch_refuses_a_manifest_with_a_git_folder_from_the_remote(
    repo: Path, tmp_path: Path
) -> None:
    """A remote's manifest is checked when it arrives: it never enters the cache."""
    remote = tmp_path / "remote"
    payload = b"[core]\n\tfsmonitor = touch /tmp/owned\n"
    payload_oid = blake3(payload).hexdigest()
    evil = manifest_bytes([("sub/.git/config", payload_oid, len(payload))])
    evil_oid = blake3(evil).hexdigest() + ".dir"
    for oid, data in ((payload_oid, payload), (evil_oid, evil)):
        path = remote / oid[:2] / oid[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_pointer(repo, "data.mlops", "data", evil_oid)
    assert run_cli(repo, "remote", "add", "origin", str(remote), "--default").exit_code == 0
    result = run_cli(repo, "pull")
    assert result.exit_code == 1
    assert evil_oid in result.stderr
    assert not (repo / ".mlops" / "cache" / evil_oid[:2] / evil_oid[2:]).exists()
    assert not (repo / "data").exists()


# --- paths in pointers ----------------------------------------------------------------


@pytest.mark.parametrize("name", [".git", ".GIT", ".mlops", ".Mlops"])
def test_a_pointer_naming_git_or_mlops_is_refused_and_force_deletes_nothing(
    repo: Path, name: str
) -> None:
    oid = store_object(repo, b"replaced\n")
    write_pointer(repo, f"{name}.mlops", name, oid)
    before = snapshot_tree(repo)
    for args in (["checkout"], ["checkout", "--force"], ["status"]):
        result = run_cli(repo, *args)
        assert result.exit_code == 1, args
        assert f"path {name!r} is refused: has a {name!r} component" in result.stderr
        assert "--force" not in result.stderr
    assert snapshot_tree(repo) == before
    assert (repo / ".git" / "HEAD").is_file() and (repo / ".mlops" / "config.yaml").is_file()


@pytest.mark.parametrize("folder", ["sub/.mlops", "sub/.GIT", "deep/.Mlops/er"])
def test_a_pointer_inside_a_reserved_folder_is_refused(repo: Path, folder: str) -> None:
    oid = store_object(repo, b"x\n")
    write_pointer(repo, f"{folder}/d.mlops", "d", oid)
    result = run_cli(repo, "checkout", "--force")
    assert result.exit_code == 1
    assert f"{folder}/d.mlops: refused: its folder has a" in result.stderr
    assert not (repo / folder / "d").exists()


# --- symbolic links in the work tree ----------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_checkout_never_writes_through_a_symlinked_tracked_path(
    repo: Path, tmp_path: Path, force: bool
) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    assert run_cli(repo, "add", "data").exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    import shutil

    shutil.rmtree(repo / "data")
    (repo / "data").symlink_to(outside)
    result = run_cli(repo, "checkout", *(["--force"] if force else []))
    assert result.exit_code == 1
    assert "data: a symbolic link; mlops never writes through one" in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep me\n"


def test_checkout_never_writes_through_a_symlinked_folder_above_the_tracked_path(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    assert run_cli(repo, "add", "data/raw.csv").exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    # The pointer stays where Git expects it, but its folder now leads elsewhere.
    (outside / "raw.csv.mlops").write_bytes((repo / "data" / "raw.csv.mlops").read_bytes())
    import shutil

    shutil.rmtree(repo / "data")
    (repo / "data").symlink_to(outside)
    result = run_cli(repo, "checkout", "--force")
    assert result.exit_code == 1
    assert "data: a symbolic link; mlops never writes through one" in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["raw.csv.mlops"]


def test_checkout_never_writes_into_a_symlinked_subfolder_of_a_tracked_folder(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "f.txt").write_text("one\n")
    assert run_cli(repo, "add", "data").exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(repo / "data" / "sub")
    (repo / "data" / "sub").symlink_to(outside)
    result = run_cli(repo, "checkout", "--force")
    assert result.exit_code == 1
    assert "symbolic link to a folder" in result.stderr
    assert list(outside.iterdir()) == []


def test_a_tracked_path_that_git_holds_as_a_symlink_is_refused(repo: Path, tmp_path: Path) -> None:
    """A commit that makes the tracked path itself a link, pointing outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    oid = store_object(repo, b"payload\n")
    write_pointer(repo, "model.bin.mlops", "model.bin", oid)
    (repo / "model.bin").symlink_to(outside / "victim.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "link")
    result = run_cli(repo, "checkout", "--force")
    assert result.exit_code == 1
    assert "model.bin: a symbolic link" in result.stderr
    assert not (outside / "victim.txt").exists()


def test_symlink_link_type_files_are_still_placed_and_replaced(repo: Path) -> None:
    """The links mlops itself makes into the cache are not refused."""
    assert run_cli(repo, "config", "cache.link", "[symlink]").exit_code == 0
    (repo / "m.bin").write_bytes(b"one")
    assert run_cli(repo, "add", "m.bin").exit_code == 0
    assert (repo / "m.bin").is_symlink()
    first = (repo / "m.bin.mlops").read_text()
    (repo / "m.bin").unlink()
    (repo / "m.bin").write_bytes(b"two")
    assert run_cli(repo, "add", "m.bin").exit_code == 0
    (repo / "m.bin.mlops").write_text(first)
    result = run_cli(repo, "checkout")
    assert result.exit_code == 0, result.stderr
    assert (repo / "m.bin").read_bytes() == b"one" and (repo / "m.bin").is_symlink()


# --- names that add accepts come back -----------------------------------------------------

ODD_NAMES = [
    "back\\slash.txt",
    "x" * 255,
    "with spaces .txt",
    " leading space",
    "new\nline.txt",
    "-leading-dash",
    "--force",
    "ünïcödé 名前.csv",
    "*.csv",
    "#hash",
    "!bang",
]


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_odd_names_come_back_from_checkout_and_pull(tmp_path: Path, link: str) -> None:
    origin = init_git(tmp_path / "origin")
    assert run_cli(origin, "init").exit_code == 0
    assert run_cli(origin, "config", "cache.link", f"[{link}, copy]").exit_code == 0
    data = origin / "data"
    (data / ("d" * 250)).mkdir(parents=True)
    contents = {name: f"content of {name!r}\n".encode() for name in ODD_NAMES}
    for name, content in contents.items():
        (data / name).write_bytes(content)
    (data / ("d" * 250) / ("f" * 255)).write_bytes(b"deep and long\n")
    assert run_cli(origin, "add", "data").exit_code == 0
    remote = tmp_path / "remote"
    assert run_cli(origin, "remote", "add", "o", str(remote), "--default").exit_code == 0
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "odd names")
    assert run_cli(origin, "push").exit_code == 0

    import shutil

    shutil.rmtree(data)
    result = run_cli(origin, "checkout")
    assert result.exit_code == 0, result.stderr
    for name, content in contents.items():
        assert (data / name).read_bytes() == content, name
    assert (data / ("d" * 250) / ("f" * 255)).read_bytes() == b"deep and long\n"

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    result = run_cli(clone, "pull")
    assert result.exit_code == 0, result.stderr
    for name, content in contents.items():
        assert (clone / "data" / name).read_bytes() == content, name
    status = run_cli(clone, "status", "--exit-code")
    assert status.exit_code == 0, status.stdout


def test_add_refuses_names_it_could_not_restore(repo: Path) -> None:
    data = repo / "data"
    data.mkdir()
    (data / "fine.txt").write_text("ok\n")
    os.close(os.open(os.fsencode(data) + b"/latin1-\xe9t\xe9.txt", os.O_CREAT | os.O_WRONLY))
    result = run_cli(repo, "add", "data")
    assert result.exit_code == 1
    assert "data: file name 'latin1-\\xe9t\\xe9.txt' is not UTF-8 text" in result.stderr
    assert not (repo / "data.mlops").exists()
    assert not (repo / ".gitignore").exists() or "/data" not in (repo / ".gitignore").read_text()


@pytest.mark.parametrize("inner", [".git/config", "sub/.GIT/HEAD", "a/.mlops/x"])
def test_add_refuses_a_folder_holding_a_git_or_mlops_folder(repo: Path, inner: str) -> None:
    path = repo / "data" / inner
    path.parent.mkdir(parents=True)
    path.write_text("x\n")
    (repo / "data" / "ok.txt").write_text("ok\n")
    result = run_cli(repo, "add", "data")
    assert result.exit_code == 1
    assert f"data: {inner!r} has a" in result.stderr
    assert not (repo / "data.mlops").exists()


def test_add_refuses_a_tracked_name_git_cannot_ignore_or_too_long_for_its_pointer(
    repo: Path,
) -> None:
    (repo / "line\nbreak.csv").write_text("x\n")
    result = run_cli(repo, "add", "line\nbreak.csv")
    assert result.exit_code == 1 and "line break cannot be ignored in Git" in result.stderr
    long = "n" * 252
    (repo / long).write_text("x\n")
    result = run_cli(repo, "add", long)
    assert result.exit_code == 1 and "name too long for its pointer file" in result.stderr
    assert [p.name for p in repo.glob("*.mlops")] == [".mlops"]


# --- the lock and packs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["../outside.txt", ".git/hooks/pre-commit", "/etc/passwd", "a/../../b", "m/.MLOPS/x"]
)
def test_a_lock_naming_an_unsafe_path_is_an_error_naming_the_lock(repo: Path, path: str) -> None:
    lock = {
        "schema": 1,
        "algo": "blake3",
        "stages": {
            "train": {
                "cmd": "true",
                "deps": [],
                "outs": [{"path": path, "hash": "0" * 64, "size": 1}],
                "run": "",
                "record": "",
            }
        },
    }
    (repo / "mlops.lock").write_text(json.dumps(lock))
    (repo / "mlops.yaml").write_text("stages:\n  train:\n    cmd: 'true'\n    outs: [model.bin]\n")
    remote = repo.parent / "remote"
    assert run_cli(repo, "remote", "add", "o", str(remote), "--default").exit_code == 0
    for args in (["status"], ["run"], ["push"], ["gc", "--dry-run"]):
        result = run_cli(repo, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert "mlops.lock" in result.stderr and repr(path) in result.stderr, args
    assert not (repo.parent / "outside.txt").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["0" * 64, 0, 10**15]], "size"),
        ([["0" * 64, -5, 10]], "offset"),
        ([["0" * 64, 2**62, 10]], "offset"),
        ([["0" * 64, 0, -1]], "size"),
        ([["0" * 64, 0, True]], "size"),
    ],
)
def test_a_pack_index_with_absurd_sizes_is_an_error_naming_the_pack(
    rows: list[list[object]], message: str
) -> None:
    from mlops.errors import RemoteError
    from mlops.remote.packs import FORMAT, parse_index

    data = json.dumps({"format": FORMAT, "algo": "blake3", "objects": rows}).encode()
    with pytest.raises(RemoteError, match=rf"pack index packs/abc\.idx is not valid: .*{message}"):
        parse_index(data, "abc")


# --- content ----------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [False, True])
def test_copy_checkout_refuses_an_object_corrupted_with_its_stat_kept(
    repo: Path, folder: bool
) -> None:
    """Size, inode and mtime as the state cache knows them, but other bytes: the copy's
    own hash catches it, and the object is set aside."""
    assert run_cli(repo, "config", "cache.link", "[copy]").exit_code == 0
    target = repo / "data" if folder else repo / "big.bin"
    good = os.urandom(9 << 20)  # a big file: the chunked copy
    if folder:
        target.mkdir()
        (target / "small.txt").write_bytes(b"small and good\n")
        (target / "big.bin").write_bytes(good)
    else:
        target.write_bytes(good)
    assert run_cli(repo, "add", target.name).exit_code == 0
    oid = blake3(good).hexdigest()
    obj = repo / ".mlops" / "cache" / oid[:2] / oid[2:]
    st = obj.stat()
    obj.chmod(0o644)
    with open(obj, "r+b") as handle:  # same inode, same size
        handle.seek(4 << 20)
        handle.write(b"X" * 16)
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    obj.chmod(0o444)
    import shutil

    shutil.rmtree(target) if folder else target.unlink()
    result = run_cli(repo, "checkout")
    assert result.exit_code == 1
    assert f"cache object {oid} is corrupt" in result.stderr and "set aside" in result.stderr
    placed = target / "big.bin" if folder else target
    assert not placed.exists()
    assert not obj.exists() and (repo / ".mlops" / "corrupt" / oid).exists()
    status = json.loads(run_cli(repo, "status", "--json").stdout)["data"][0]
    assert status["cache"] == "missing" and status["corrupt_objects"] == 1
    assert not list((repo / ".mlops" / "tmp" / "work").iterdir())


# --- pipeline outputs -------------------------------------------------------------------


def test_a_stage_output_tracked_by_git_is_refused_and_kept(repo: Path) -> None:
    (repo / "model.bin").write_text("committed by hand\n")
    (repo / "mlops.yaml").write_text(
        "stages:\n  train:\n    cmd: echo new > model.bin\n    outs: [model.bin]\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "model in git")
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "output 'model.bin' is tracked by Git; untrack it first" in result.stderr
    assert (repo / "model.bin").read_text() == "committed by hand\n"
    assert not (repo / "mlops.lock").exists()


def test_a_stage_output_through_a_symlinked_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.bin").write_text("not mlops's to delete\n")
    (repo / "models").symlink_to(outside)
    (repo / "mlops.yaml").write_text(
        "stages:\n  train:\n    cmd: echo new > models/model.bin\n    outs: [models/model.bin]\n"
    )
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "models: a symbolic link; mlops never writes through one" in result.stderr
    assert (outside / "model.bin").read_text() == "not mlops's to delete\n"
