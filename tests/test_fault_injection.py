"""kill -9 at many moments of add, checkout, pull, fetch, push and run, in every link mode.

Each test starts the real command (``python -m mlops ...``), polls for the files it writes
(k of the files in the target folder, k objects in the cache or on the remote) and sends
SIGKILL once k is reached; then it checks what the user and Git can see, that ``status``
tells the truth, and starts the command again from the interrupted state, killing it at
the next k. The last start must complete, without ``--force``, and leave no temporary.

Polling rarely lands in the instant between a small file's temporary and its rename, so
where strace is installed it also kills each command exactly at each of its renames.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from blake3 import blake3

from tests.helpers.cli import run_cli
from tests.helpers.repos import git

FILES = 160
# More than SHARE_MIN_FILES: the forked worker processes are in play too.
MANY_FILES = 1200
BIG_FILES = 8  # above the pack threshold: each is a loose object on the remote
# Small files for the transfers: more than a pack's minimum.
PACKED = 64
BIG_SIZE = 300 << 10
# Where each start is killed: fractions of the files, objects or outputs the command writes.
FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8)
MODES = {
    "copy": "[copy]",
    "hardlink": "[hardlink]",
    "symlink": "[symlink]",
    "reflink": "[reflink, copy]",
}
TEMPORARY_MARKS = (".mlops-tmp", ".tmp")
# The folders mlops keeps its temporaries in; empty once a command has completed.
SCRATCH = (".mlops/cache/tmp", ".mlops/tmp/work")
# Filled by the tests, printed at the end of the session (``-s`` shows it).
TALLY: dict[str, list[int]] = {}


# The data --------------------------------------------------------------------------------


def small_files(version: str, count: int = FILES) -> dict[str, bytes]:
    """data/: small files in 8 sub-folders; each version changes every file."""
    return {f"d{i % 8}/f{i:04}.txt": f"{i} {version}\n".encode() for i in range(count)}


def big_files(version: str) -> dict[str, bytes]:
    """models/: a few files too big for a pack."""
    out = {}
    for j in range(BIG_FILES):
        seed = blake3(f"{j} {version}".encode()).digest(length=BIG_SIZE)
        out[f"m{j:02}.bin"] = seed
    return out


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def remove_tree(root: Path) -> None:
    """``rm -rf``, also through the read-only bits of linked files."""
    subprocess.run(["rm", "-rf", str(root)], check=True)


# Starting, polling and killing ------------------------------------------------------------


def start(repo: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops", *args],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(
    proc: subprocess.Popen[bytes], progress: Callable[[], int], target: int, interval: float
) -> bool:
    """SIGKILL ``proc`` once ``progress()`` reaches ``target``; False if it ended first."""
    deadline = time.monotonic() + 60
    while progress() < target:
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the command made no progress in 60 s"
        time.sleep(interval)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def count_files(folder: Path) -> int:
    total = 0
    for _, _, names in os.walk(folder):
        total += len(names)
    return total


def cache_count(repo: Path) -> int:
    """Objects in the cache (one listing per fan-out folder)."""
    root = repo / ".mlops" / "cache"
    total = 0
    try:
        prefixes = [e.path for e in os.scandir(root) if len(e.name) == 2]
    except FileNotFoundError:
        return 0
    for prefix in prefixes:
        total += sum(1 for name in os.listdir(prefix) if not name.startswith("."))
    return total


def loose_count(store: Path) -> int:
    """Loose objects on a local-folder remote."""
    total = 0
    with os.scandir(store) as entries:
        for entry in entries:
            if len(entry.name) == 2 and entry.is_dir():
                total += sum(1 for name in os.listdir(entry.path) if not name.startswith("."))
    return total


@dataclass
class Kills:
    """The kill points of one command in one link mode."""

    name: str
    tried: int = 0
    left_behind: int = 0
    finished_first: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self, killed: bool, problems: list[str]) -> None:
        if not killed:
            self.finished_first += 1
            return
        self.tried += 1
        if problems:
            self.left_behind += 1
            self.problems.extend(problems)

    def done(self) -> None:
        TALLY[self.name] = [self.tried, self.left_behind, self.finished_first]
        assert not self.problems, "\n".join(self.problems[:20])
        assert self.tried >= 3, f"{self.name}: only {self.tried} kill(s) landed mid-command"


def chain(
    kills: Kills,
    launch: Callable[[], subprocess.Popen[bytes]],
    progress: Callable[[], int],
    total: int,
    inspect: Callable[[], list[str]],
    interval: float = 0.001,
) -> None:
    """Start the command once per fraction, killing it when ``progress()`` reaches that
    fraction of ``total`` (at least one); inspect what is left after each kill."""
    for fraction in FRACTIONS:
        proc = launch()
        killed = kill_when(proc, progress, max(1, int(total * fraction)), interval)
        kills.record(killed, inspect() if killed else [])


def finish(repo: Path, *args: str) -> None:
    """The same command again completes, without --force, and leaves no temporary."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", *args], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    for folder in SCRATCH:
        left = os.listdir(repo / folder) if (repo / folder).is_dir() else []
        assert not left, f"{folder} still holds {left[:3]} after a completed {args[0]}"


# What the user and Git see ----------------------------------------------------------------


def visible_problems(repo: Path, expected: dict[str, set[bytes]]) -> list[str]:
    """Temporaries or partial files in the work tree (outside .git and .mlops).

    ``expected`` maps each data file (relative to the repository) to the contents it may
    have; a file that is not listed is one mlops made (or the user's own, listed too).
    """
    problems = []
    cache = (repo / ".mlops" / "cache").resolve()
    for folder, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if not (folder == str(repo) and d in (".git", ".mlops"))]
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(repo).as_posix()
            if any(mark in name for mark in TEMPORARY_MARKS):
                problems.append(f"temporary in the work tree: {rel}")
                continue
            if rel in expected or rel.startswith(("data/", "models/", "out/")):
                if rel not in expected:
                    problems.append(f"unexpected file: {rel}")
                    continue
                if path.is_symlink():
                    target = path.resolve()
                    if cache not in target.parents:
                        problems.append(f"{rel}: a link outside the cache ({target})")
                        continue
                try:
                    content = path.read_bytes()
                except FileNotFoundError:
                    problems.append(f"{rel}: a dangling link")
                    continue
                if content not in expected[rel]:
                    problems.append(f"{rel}: partial or foreign content ({len(content)} bytes)")
    return problems


def git_problems(repo: Path, allowed: set[str]) -> list[str]:
    """Paths ``git status`` shows beyond ``allowed`` (every untracked file, one by one)."""
    out = git(repo, "status", "--porcelain", "--untracked-files=all", "-z")
    shown = {entry[3:] for entry in out.split("\0") if entry}
    return [f"git sees {path}" for path in sorted(shown - allowed)]


def disk_hashes(folder: Path) -> dict[str, str]:
    found = {}
    for sub, _, names in os.walk(folder):
        for name in names:
            path = Path(sub, name)
            found[path.relative_to(folder).as_posix()] = blake3(path.read_bytes()).hexdigest()
    return found


def manifest_of(repo: Path, tracked: str) -> dict[str, str] | None:
    """The files the pointer of ``tracked`` records, by path (None without a pointer)."""
    pointer_file = repo / f"{tracked}.mlops"
    if not pointer_file.exists():
        return None
    import yaml

    oid = yaml.safe_load(pointer_file.read_text())["hash"]
    obj = repo / ".mlops" / "cache" / oid[:2] / oid[2:]
    if not obj.exists():
        return {}  # not fetched yet
    data = obj.read_bytes()
    assert blake3(data).hexdigest() == oid.removesuffix(".dir"), f"{tracked}: corrupt manifest"
    return {path: digest for path, digest, _, _ in json.loads(data)["files"]}


def status_problems(repo: Path, tracked: tuple[str, ...]) -> list[str]:
    """Whether ``mlops status`` says of each tracked folder what its files show."""
    result = run_cli(repo, "status", "--json")
    if result.exit_code != 0:
        return [f"status failed: {result.stderr.strip()}"]
    reported = {d["path"]: d for d in json.loads(result.stdout)["data"]}
    problems = []
    for name in tracked:
        recorded = manifest_of(repo, name)
        if recorded is None:
            if name in reported:
                problems.append(f"status reports {name}, which has no pointer")
            continue
        have = disk_hashes(repo / name) if (repo / name).is_dir() else {}
        truth = {
            "added": sorted(set(have) - set(recorded)),
            "deleted": sorted(set(recorded) - set(have)),
            "modified": sorted(p for p in have if p in recorded and have[p] != recorded[p]),
        }
        got = reported.get(name)
        if got is None:
            problems.append(f"status does not report {name}")
            continue
        if not recorded:  # the manifest is not in the cache: nothing to compare with
            if got["cache"] != "missing":
                problems.append(f"status: {name}'s cache is {got['cache']}, truly missing")
            continue
        if not (repo / name).is_dir():
            if got["workspace"] != "missing":
                problems.append(f"status: {name} is {got['workspace']}, not missing")
            continue
        for key, paths in truth.items():
            if sorted(got[key]) != paths:
                wrong = sorted(set(got[key]) ^ set(paths))
                problems.append(f"status: {name} {key}: wrong about {len(wrong)}: {wrong[:3]}")
        clean = not any(truth.values())
        if (got["workspace"] == "unchanged") != clean:
            problems.append(f"status: {name} is {got['workspace']}, truly clean={clean}")
    return problems


# A repository in one link mode ------------------------------------------------------------


def new_repo(root: Path, mode: str) -> Path:
    from tests.helpers.repos import init_git

    repo = init_git(root)
    assert run_cli(repo, "init").exit_code == 0
    assert run_cli(repo, "config", "cache.link", MODES[mode]).exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def commit_data(repo: Path, version: str, *folders: str, count: int = FILES) -> None:
    """Write version ``version`` of ``folders``, add them and commit the pointers."""
    for name in folders:
        remove_tree(repo / name)
        made = small_files(version, count) if name == "data" else big_files(version)
        write_tree(repo / name, made)
    result = run_cli(repo, "add", *folders)
    assert result.exit_code == 0, result.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", version)


def expect(count: int = FILES, **versions: tuple[str, ...]) -> dict[str, set[bytes]]:
    """The contents each file of the named folders may have, from the named versions."""
    allowed: dict[str, set[bytes]] = {}
    for name, names in versions.items():
        for version in names:
            made = small_files(version, count) if name == "data" else big_files(version)
            for rel, data in made.items():
                allowed.setdefault(f"{name}/{rel}", set()).add(data)
    return allowed


# add --------------------------------------------------------------------------------------


# Every link mode with a few files, and one with enough for worker processes.
SIZES = [
    *((mode, FILES) for mode in MODES),
    pytest.param("copy", MANY_FILES, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("mode", "count"), SIZES)
def test_killed_add(tmp_path: Path, mode: str, count: int) -> None:
    repo = new_repo(tmp_path / "repo", mode)
    write_tree(repo / "data", small_files("v1", count))
    allowed = expect(count, data=("v1",))
    user_files = {f"data/{rel}" for rel in small_files("v1", count)}
    kills = Kills(f"add/{mode}/{count}")

    def inspect() -> list[str]:
        problems = visible_problems(repo, allowed)
        problems += git_problems(repo, user_files | {".gitignore", "data.mlops"})
        recorded = manifest_of(repo, "data")  # a pointer, if written, is the whole snapshot
        if recorded is not None and recorded != disk_hashes(repo / "data"):
            problems.append("the pointer does not record the user's files")
        return problems + status_problems(repo, ("data",))

    chain(kills, lambda: start(repo, "add", "data"), lambda: cache_count(repo), count, inspect)
    finish(repo, "add", "data")
    assert manifest_of(repo, "data") == disk_hashes(repo / "data")
    assert visible_problems(repo, allowed) == []
    assert git_problems(repo, {".gitignore", "data.mlops"}) == []
    assert status_problems(repo, ("data",)) == []
    kills.done()


# checkout ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "count"), SIZES)
def test_killed_checkout_into_an_empty_folder(tmp_path: Path, mode: str, count: int) -> None:
    repo = new_repo(tmp_path / "repo", mode)
    commit_data(repo, "v1", "data", count=count)
    remove_tree(repo / "data")
    allowed = expect(count, data=("v1",))
    kills = Kills(f"checkout/{mode}/{count}")

    def inspect() -> list[str]:
        problems = visible_problems(repo, allowed) + git_problems(repo, set())
        return problems + status_problems(repo, ("data",))

    chain(
        kills,
        lambda: start(repo, "checkout"),
        lambda: count_files(repo / "data"),
        count,
        inspect,
    )
    finish(repo, "checkout")
    assert disk_hashes(repo / "data") == manifest_of(repo, "data")
    assert status_problems(repo, ("data",)) == []
    kills.done()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_killed_checkout_of_another_version_then_add(tmp_path: Path, mode: str) -> None:
    """Killed while replacing v2 by v1; an ``add`` then records exactly the files the user
    sees (each v1 or v2, none partial, no temporary)."""
    repo = new_repo(tmp_path / "repo", mode)
    commit_data(repo, "v1", "data")
    commit_data(repo, "v2", "data")
    git(repo, "checkout", "-q", "HEAD~1", "--", "data.mlops")  # the pointer says v1 now
    allowed = expect(data=("v1", "v2"))
    inodes = {p: os.lstat(repo / "data" / p).st_ino for p in small_files("v1")}
    kills = Kills(f"checkout-switch/{mode}")

    def replaced() -> int:
        count = 0
        for rel, ino in inodes.items():
            try:
                count += os.lstat(repo / "data" / rel).st_ino != ino
            except FileNotFoundError:
                count += 1
        return count

    def inspect() -> list[str]:
        problems = visible_problems(repo, allowed)
        problems += git_problems(repo, {"data.mlops"})
        problems += status_problems(repo, ("data",))
        # The user's files now are a mix of v1 and v2: add records exactly that mix.
        seen = disk_hashes(repo / "data")
        result = run_cli(repo, "add", "data")
        if result.exit_code != 0:
            return [*problems, f"add after the kill failed: {result.stderr.strip()}"]
        if manifest_of(repo, "data") != seen:
            problems.append("add after an interrupted checkout recorded other content")
        git(repo, "checkout", "-q", "HEAD~1", "--", "data.mlops")  # back to v1 for the next
        return problems

    chain(kills, lambda: start(repo, "checkout"), replaced, FILES, inspect)
    finish(repo, "checkout")
    assert disk_hashes(repo / "data") == manifest_of(repo, "data")
    assert visible_problems(repo, expect(data=("v1",))) == []
    kills.done()


# push, fetch, pull ------------------------------------------------------------------------


def pushed_repo(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    """A repository with data/ (packed) and models/ (loose objects) committed, and a
    local-folder remote ``store`` that has nothing yet."""
    repo = new_repo(tmp_path / "repo", mode)
    commit_data(repo, "v1", "data", "models", count=PACKED)
    store = tmp_path / "store"
    assert run_cli(repo, "remote", "add", "origin", str(store), "--default").exit_code == 0
    git(repo, "commit", "-qam", "remote")
    return repo, store


def remote_objects(store: Path) -> set[str]:
    """The objects on a local-folder remote, loose and packed."""
    found = {p.parent.name + p.name for p in store.glob("??/*")}
    for idx in store.glob("packs/*.idx"):
        found.update(oid for oid, _, _ in json.loads(idx.read_bytes())["objects"])
    return found


def remote_problems(store: Path, finished: bool = False) -> list[str]:
    """Partial objects or temporaries on a local-folder remote: after a kill, only in its
    tmp/ folder (where no reader looks); once a push has completed, none."""
    problems = []
    for folder, _, names in os.walk(store):
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(store).as_posix()
            if rel.startswith("tmp/") and not finished:
                continue
            if name.startswith(".") or any(mark in name for mark in TEMPORARY_MARKS):
                problems.append(f"temporary on the remote: {rel}")
            elif len(path.parent.name) == 2:
                oid = path.parent.name + name
                if blake3(path.read_bytes()).hexdigest() != oid.removesuffix(".dir"):
                    problems.append(f"partial object on the remote: {rel}")
    return problems


def cache_objects(repo: Path) -> set[str]:
    root = repo / ".mlops" / "cache"
    return {prefix.name + obj.name for prefix in root.glob("??") for obj in prefix.iterdir()}


def cache_problems(repo: Path) -> list[str]:
    """Objects in the cache whose bytes do not match their id."""
    problems = []
    root = repo / ".mlops" / "cache"
    for prefix in root.glob("??"):
        for obj in prefix.iterdir():
            oid = prefix.name + obj.name
            if blake3(obj.read_bytes()).hexdigest() != oid.removesuffix(".dir"):
                problems.append(f"partial object in the cache: {oid}")
    return problems


@pytest.mark.parametrize("mode", MODES)
def test_killed_push_to_a_folder(tmp_path: Path, mode: str) -> None:
    repo, store = pushed_repo(tmp_path, mode)
    allowed = expect(PACKED, data=("v1",), models=("v1",))
    kills = Kills(f"push/{mode}")

    def inspect() -> list[str]:
        problems = remote_problems(store) + visible_problems(repo, allowed)
        return problems + git_problems(repo, set())

    # Every file counts, temporaries too: a kill then often lands in the middle of one.
    chain(
        kills,
        lambda: start(repo, "push", "-j", "1"),
        lambda: count_files(store),
        BIG_FILES,
        inspect,
    )
    finish(repo, "push")
    assert remote_problems(store, finished=True) == []
    assert remote_objects(store) == cache_objects(repo)
    kills.done()


@pytest.mark.parametrize("mode", MODES)
def test_killed_fetch(tmp_path: Path, mode: str) -> None:
    repo, _ = pushed_repo(tmp_path, mode)
    assert run_cli(repo, "push").exit_code == 0
    objects = cache_count(repo)
    for name in (".mlops/cache", "data", "models"):  # links into the cache would dangle
        remove_tree(repo / name)
    allowed: dict[str, set[bytes]] = {}  # fetch writes nothing in the work tree
    kills = Kills(f"fetch/{mode}")

    def inspect() -> list[str]:
        problems = cache_problems(repo) + visible_problems(repo, allowed)
        return problems + git_problems(repo, set())

    chain(
        kills, lambda: start(repo, "fetch", "-j", "1"), lambda: cache_count(repo), objects, inspect
    )
    finish(repo, "fetch")
    assert cache_count(repo) == objects and cache_problems(repo) == []
    kills.done()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_killed_pull(tmp_path: Path, mode: str) -> None:
    repo, _ = pushed_repo(tmp_path, mode)
    assert run_cli(repo, "push").exit_code == 0
    objects = cache_count(repo)
    for name in (".mlops/cache", "data", "models"):
        remove_tree(repo / name)
    allowed = expect(PACKED, data=("v1",), models=("v1",))
    kills = Kills(f"pull/{mode}")

    def progress() -> int:
        return cache_count(repo) + count_files(repo / "data") + count_files(repo / "models")

    def inspect() -> list[str]:
        problems = cache_problems(repo) + visible_problems(repo, allowed)
        problems += git_problems(repo, set())
        return problems + status_problems(repo, ("data", "models"))

    total = objects + PACKED + BIG_FILES
    chain(kills, lambda: start(repo, "pull", "-j", "1"), progress, total, inspect)
    finish(repo, "pull")
    for name in ("data", "models"):
        assert disk_hashes(repo / name) == manifest_of(repo, name)
    assert status_problems(repo, ("data", "models")) == []
    kills.done()


@pytest.mark.slow
def test_killed_push_to_s3(
    tmp_path: Path, s3_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    import boto3

    repo, _ = pushed_repo(tmp_path, "copy")
    bucket = f"kill-{os.urandom(4).hex()}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/store"
    assert run_cli(repo, "remote", "add", "s3", url, "--default").exit_code == 0
    result = run_cli(repo, "remote", "modify", "s3", "endpoint_url", s3_endpoint)
    assert result.exit_code == 0, result.stderr
    git(repo, "commit", "-qam", "s3")
    kills = Kills("push/s3")

    def listing() -> dict[str, bytes]:
        """Every key but the packs (whose index says what they hold), with its bytes."""
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith(".pack"):
                    found[key] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return found

    def s3_objects() -> set[str]:
        """The objects on S3, loose and packed."""
        found = set()
        for key, data in listing().items():
            rel = key.removeprefix("store/")
            if rel.endswith(".idx"):
                found.update(oid for oid, _, _ in json.loads(data)["objects"])
            elif not rel.startswith("packs/"):
                found.add(rel.replace("/", ""))
        return found

    def loose() -> int:
        reply = client.list_objects_v2(Bucket=bucket, Prefix="store/")
        return sum(1 for obj in reply.get("Contents", []) if "/packs/" not in obj["Key"])

    def inspect() -> list[str]:
        problems = []
        for key, data in listing().items():
            rel = key.removeprefix("store/")
            if rel.startswith("packs/"):
                continue
            oid = rel.replace("/", "")
            if blake3(data).hexdigest() != oid.removesuffix(".dir"):
                problems.append(f"partial object on S3: {key}")
        return problems + git_problems(repo, set())

    # Polled less often: each poll is a request to the one S3 server the push talks to.
    chain(kills, lambda: start(repo, "push", "-j", "1"), loose, BIG_FILES, inspect, 0.02)
    finish(repo, "push")
    assert s3_objects() == cache_objects(repo)
    assert inspect() == []
    kills.done()


# run --------------------------------------------------------------------------------------

OUTPUTS = 160
MAKE = f"""\
import pathlib, sys
out = pathlib.Path("out")
out.mkdir(exist_ok=True)
seed = pathlib.Path("seed.txt").read_text()
for i in range({OUTPUTS}):
    (out / f"f{{i:03}}.txt").write_text(f"{{i}} {{seed}}")
"""


def made(seed: str) -> dict[str, set[bytes]]:
    """What the stage writes: each file complete, or empty if it was killed writing it."""
    return {f"out/f{i:03}.txt": {f"{i} {seed}".encode(), b""} for i in range(OUTPUTS)}


def stage_problems(repo: Path) -> list[str]:
    """``status`` calls the stage up to date only if its outputs are those the lock records."""
    result = run_cli(repo, "status", "--json")
    if result.exit_code != 0:
        return [f"status failed: {result.stderr.strip()}"]
    (stage,) = json.loads(result.stdout)["stages"]
    if stage["stale"]:
        return []
    (out,) = json.loads((repo / "mlops.lock").read_text())["stages"]["make"]["outs"]
    obj = repo / ".mlops" / "cache" / out["hash"][:2] / out["hash"][2:]
    recorded = {path: digest for path, digest, _, _ in json.loads(obj.read_bytes())["files"]}
    if disk_hashes(repo / "out") != recorded:
        return ["status calls the stage up to date, but out/ is not what the lock records"]
    return []


@pytest.mark.parametrize("mode", MODES)
def test_killed_run(tmp_path: Path, mode: str) -> None:
    """Killed while the stage writes its outputs and while mlops stores them."""
    repo = new_repo(tmp_path / "repo", mode)
    (repo / "mlops.yaml").write_text(
        f"stages:\n  make:\n    cmd: {sys.executable} make.py\n"
        "    deps: [make.py, seed.txt]\n    outs: [out]\n"
    )
    (repo / "make.py").write_text(MAKE)
    (repo / "seed.txt").write_text("one")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pipeline")
    stage_files = {f"out/f{i:03}.txt" for i in range(OUTPUTS)}
    kills = Kills(f"run/{mode}")

    def inspect() -> list[str]:
        problems = visible_problems(repo, made("one"))
        problems += git_problems(repo, stage_files | {"mlops.lock", ".gitignore"})
        return problems + stage_problems(repo)

    def progress() -> int:
        return count_files(repo / "out") + cache_count(repo)

    chain(kills, lambda: start(repo, "run"), progress, 2 * OUTPUTS, inspect)
    finish(repo, "run")
    assert visible_problems(repo, made("one")) == []
    assert git_problems(repo, {"mlops.lock", ".gitignore"}) == []
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    assert [s["stale"] for s in status["stages"]] == [False]
    assert stage_problems(repo) == []
    kills.done()


def group_gone(pgid: int) -> bool:
    """Whether every process of the group has gone, polled for up to 20 s."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


# A shell that starts a sleeping child and a Python child that writes late.txt later.
ORPHANS = (
    "echo $$ > {pid}; "
    "{python} -c \"import pathlib, time; pathlib.Path('{ready}').write_text('1'); "
    "time.sleep(3); pathlib.Path('late.txt').write_text('late')\" & "
    "sh -c 'sleep 30 & wait' & wait"
)


def kill_with_orphans(repo: Path, tmp_path: Path, argv: tuple[str, ...]) -> None:
    """Start ``mlops ARGV``, whose command runs ORPHANS; kill -9 mlops once the Python
    child runs; its whole process group must go, and late.txt never appear."""
    pid_file, ready = tmp_path / "group.pid", tmp_path / "ready"
    proc = start(repo, *argv)
    started = lambda: int(ready.exists() and pid_file.exists())  # noqa: E731
    assert kill_when(proc, started, 1, 0.005), "the command never started"
    pgid = int(pid_file.read_text())
    assert group_gone(pgid), "the command's processes outlived mlops"
    assert not (repo / "late.txt").exists()


def orphans_cmd(tmp_path: Path) -> str:
    return ORPHANS.format(
        pid=tmp_path / "group.pid", ready=tmp_path / "ready", python=sys.executable
    )


def test_killed_run_takes_its_stage_processes_along(repo: Path, tmp_path: Path) -> None:
    cmd = orphans_cmd(tmp_path).replace("'", "''")
    (repo / "mlops.yaml").write_text(f"stages:\n  slow:\n    cmd: '{cmd}'\n    outs: [late.txt]\n")
    kill_with_orphans(repo, tmp_path, ("run",))


def test_killed_check_takes_its_command_along(repo: Path, tmp_path: Path) -> None:
    cmd = orphans_cmd(tmp_path).replace("'", "''")
    (repo / "d.csv").write_text("a\n1\n")
    (repo / "mlops.yaml").write_text(
        f"checks:\n  s:\n    data: d.csv\n    expect:\n      - command: '{cmd}'\n"
    )
    kill_with_orphans(repo, tmp_path, ("check", "s"))


# Killed exactly as a file is published --------------------------------------------------
#
# Polling rarely lands in the instant between writing a small file's temporary and its
# rename, so strace's fault injection kills the command as it enters its n-th rename
# (or link, which publishes objects in hardlink mode), for every n until it completes.

PUBLISHING = "rename,renameat,renameat2,link,linkat,symlink,symlinkat"


def traced(repo: Path, n: int, *args: str) -> bool:
    """Run ``mlops ARGS``, SIGKILLed as it enters its n-th publishing system call; whether
    it was killed (False: it completed before that)."""
    proc = subprocess.run(
        # -f: the threads that store a stage's outputs too (the git it runs renames nothing).
        [
            *("strace", "-f", "-qq", "-o", "/dev/null"),
            *("-e", f"trace={PUBLISHING}"),
            *("-e", f"inject={PUBLISHING}:signal=SIGKILL:when={n}"),
            *(sys.executable, "-m", "mlops", *args),
        ],
        cwd=repo,
        capture_output=True,
    )
    if proc.returncode not in (0, -signal.SIGKILL, 128 + signal.SIGKILL):
        pytest.fail(f"mlops {' '.join(args)} failed: {proc.stderr.decode()[-500:]}")
    return proc.returncode != 0


def every_publication(
    kills: Kills,
    repo: Path,
    reset: Callable[[], None],
    args: tuple[str, ...],
    inspect: Callable[[], list[str]],
) -> None:
    """Kill ``mlops ARGS`` at each of its publishing calls in turn, from the same start;
    after each, inspect and run it again to completion. (strace counts the calls of each
    thread apart: ``-j 1`` makes every call of a transfer a kill point of its own.)"""
    for n in range(1, 200):
        reset()
        if not traced(repo, n, *args):
            break
        kills.record(True, inspect())
        result = run_cli(repo, *args)
        if result.exit_code != 0:
            kills.problems.append(f"n={n}: the rerun failed: {result.stderr.strip()}")
    kills.finished_first = 1
    # What the killed ones left in .mlops/ went with the reruns.
    left = [str(p) for p in (repo / ".mlops").rglob("*.mlops-tmp")]
    assert not left, f"{kills.name}: temporaries never swept: {left[:3]}"


needs_strace = pytest.mark.skipif(
    shutil.which("strace") is None
    or subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"]).returncode != 0,
    reason="strace is missing or may not trace here",
)
FEW = 3


@needs_strace
@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_killed_at_each_publication_of_add(tmp_path: Path, mode: str) -> None:
    repo = new_repo(tmp_path / "repo", mode)
    allowed = expect(FEW, data=("v1",))
    allowed["one.txt"] = {b"one"}
    kills = Kills(f"add-each/{mode}")

    def reset() -> None:
        for name in ("data", "data.mlops", "one.txt", "one.txt.mlops", ".gitignore"):
            remove_tree(repo / name)
        remove_tree(repo / ".mlops" / "cache")
        write_tree(repo / "data", small_files("v1", FEW))
        (repo / "one.txt").write_text("one")

    def inspect() -> list[str]:
        problems = visible_problems(repo, allowed)
        shown = set(allowed) | {".gitignore", "data.mlops", "one.txt.mlops"}
        return problems + git_problems(repo, shown) + status_problems(repo, ("data",))

    every_publication(kills, repo, reset, ("add", "data", "one.txt"), inspect)
    kills.done()


@needs_strace
@pytest.mark.parametrize("mode", ["copy", "symlink"])
def test_killed_at_each_publication_of_checkout(tmp_path: Path, mode: str) -> None:
    repo = new_repo(tmp_path / "repo", mode)
    commit_data(repo, "v1", "data", count=FEW)
    kills = Kills(f"checkout-each/{mode}")

    def inspect() -> list[str]:
        problems = visible_problems(repo, expect(FEW, data=("v1",)))
        return problems + git_problems(repo, set()) + status_problems(repo, ("data",))

    every_publication(kills, repo, lambda: remove_tree(repo / "data"), ("checkout",), inspect)
    kills.done()


@needs_strace
def test_killed_at_each_publication_of_run(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", "copy")
    (repo / "mlops.yaml").write_text(
        "stages:\n  make:\n    cmd: mkdir -p out && echo a > out/a && echo b > out/b\n"
        "    outs: [out]\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pipeline")
    kills = Kills("run-each/copy")

    def reset() -> None:
        for name in ("out", "mlops.lock", ".gitignore", ".mlops/cache"):
            remove_tree(repo / name)
        for db in (repo / ".mlops").glob("runs.db*"):
            db.unlink()

    def inspect() -> list[str]:
        allowed = {"out/a": {b"a\n", b""}, "out/b": {b"b\n", b""}}
        problems = visible_problems(repo, allowed)
        problems += git_problems(repo, {"out/a", "out/b", "mlops.lock", ".gitignore"})
        return problems + stage_problems(repo)

    every_publication(kills, repo, reset, ("run",), inspect)
    kills.done()


@needs_strace
def test_killed_at_each_publication_of_push_and_pull(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", "copy")
    commit_data(repo, "v1", "data", count=FEW)
    store = tmp_path / "store"
    assert run_cli(repo, "remote", "add", "origin", str(store), "--default").exit_code == 0
    git(repo, "commit", "-qam", "remote")
    pushes = Kills("push-each/copy")
    push = ("push", "-j", "1")
    every_publication(
        pushes, repo, lambda: remove_tree(store), push, lambda: remote_problems(store)
    )
    assert remote_problems(store, finished=True) == []
    pulls = Kills("pull-each/copy")

    def inspect() -> list[str]:
        problems = cache_problems(repo) + visible_problems(repo, expect(FEW, data=("v1",)))
        return problems + git_problems(repo, set()) + status_problems(repo, ("data",))

    def reset() -> None:
        for name in ("data", ".mlops/cache"):
            remove_tree(repo / name)

    every_publication(pulls, repo, reset, ("pull", "-j", "1"), inspect)
    pushes.done()
    pulls.done()


def test_a_zombie_owns_no_temporaries(tmp_path: Path) -> None:
    """A worker killed with its parent may never be reaped (PID 1 of a container): its
    temporaries are swept all the same; a live process's are kept."""
    from mlops.core.fsutil import sweep_temporaries

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0] != b"Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / f"{pid}-0.mlops-tmp").write_text("partial")
        (tmp_path / f"{os.getpid()}-0.mlops-tmp").write_text("mine")
        assert sweep_temporaries(tmp_path) == 1
        assert os.listdir(tmp_path) == [f"{os.getpid()}-0.mlops-tmp"]
    finally:
        os.waitpid(pid, 0)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if TALLY:
        print("\nkill points (tried, left something behind, finished before the kill):")
        for name, (tried, left, finished) in sorted(TALLY.items()):
            print(f"  {name:28} {tried:3} {left:3} {finished:3}")
