"""Hostile input and a hostile system (issue 16, points 6-9): YAML bombs, names that are
globs, credentials in the committed config, a full, read-only or unwritable disk, a
closed pipe. Each case is one clear line and exit 1, nothing half-written, no hang."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.core.yamlio import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_JSON_BYTES,
    MAX_YAML_BYTES,
    YamlProblem,
    parse_json,
    parse_yaml,
)
from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.repos import git

# Nine levels of nine: 9^9 (~387 million) strings once expanded.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
RECURSIVE_ALIAS = "a: &a [1, *a]\n"
DEEP_FLOW = "x: " + "[" * 5000 + "]" * 5000 + "\n"  # past libyaml's own limit (1000)
DEEP_BLOCK = "".join(" " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + " " * 80 + "v: 1\n"
DEEP_BY_ALIAS = (
    "a: &x " + "[" * (MAX_DEPTH - 10) + "]" * (MAX_DEPTH - 10) + "\n"
    "b: " + "[" * 20 + "*x" + "]" * 20 + "\n"
)
HUGE = "# padding\n" * (MAX_YAML_BYTES // 10 + 1)

HOSTILE_YAML = {
    "alias bomb": (ALIAS_BOMB, "alias bomb"),
    "recursive alias": (RECURSIVE_ALIAS, "refers to a node that holds it"),
    "deep flow nesting": (DEEP_FLOW, "nesting depth"),
    "deep block nesting": (DEEP_BLOCK, f"nested more than {MAX_DEPTH} levels"),
    "deep through an alias": (DEEP_BY_ALIAS, f"nested more than {MAX_DEPTH} levels"),
    "huge document": (HUGE, "bytes mlops reads"),
    "dense document": ("x: [" + "1," * MAX_ENTRIES + "]\n", "lines and entries"),
    "duplicate key": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first on line 1)"),
}


@pytest.mark.parametrize("case", list(HOSTILE_YAML))
def test_hostile_yaml_is_refused_at_once(case: str) -> None:
    text, expected = HOSTILE_YAML[case]
    start = time.perf_counter()
    with pytest.raises(YamlProblem, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_yaml(text)
    # Generous for a loaded machine; unguarded, the bomb alone takes minutes and GBs.
    assert time.perf_counter() - start < 1.0


OTHER_BAD_YAML = {
    "python tag": (
        b'stages: !!python/object/apply:os.system ["touch pwned"]\n',
        "mlops.yaml:1: invalid YAML: could not determine a constructor for the tag",
    ),
    "two documents": (b"stages: {}\n---\nstages: {}\n", "mlops.yaml:2: invalid YAML"),
    "unhashable key": (b"? [a, b]: 1\n", "mlops.yaml:1: invalid YAML: found unhashable key"),
    "not UTF-8": (b'stages:\n  a:\n    cmd: "\xff"\n', "mlops.yaml: invalid YAML: not UTF-8"),
    "undefined alias": (b"stages: *nope\n", "mlops.yaml:1: invalid YAML: found undefined alias"),
}


@pytest.mark.parametrize("case", list(OTHER_BAD_YAML))
def test_other_bad_yaml_is_one_line_and_runs_nothing(repo: Path, case: str) -> None:
    text, expected = OTHER_BAD_YAML[case]
    (repo / "mlops.yaml").write_bytes(text)
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlops: error: {expected}"), result.stderr
    assert not (repo / "pwned").exists()


def test_duplicate_key_names_its_line() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("stages:\n  a:\n    cmd: x\n    cmd: y\n")
    assert caught.value.line == 4
    assert caught.value.located("mlops.yaml") == (
        "mlops.yaml:4: invalid YAML: duplicate key 'cmd' (first on line 3)"
    )


def test_what_yaml_allows_still_reads() -> None:
    doc = parse_yaml("base: &b {lr: 0.1}\ntrain:\n  <<: *b\n  epochs: 3\nlist: [*b, *b]\n")
    assert doc["train"] == {"lr": 0.1, "epochs": 3} and doc["list"] == [{"lr": 0.1}] * 2
    # Aliases may add up to the limit: a document of MAX_ALIAS_NODES // 4 aliases of a
    # four-node list reads.
    parse_yaml("a: &a [1, 2, 3]\nb: [" + ", ".join(["*a"] * (MAX_ALIAS_NODES // 4)) + "]\n")
    nested = "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_yaml(nested) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels"),
        ('{"a": [1, 2,\n}', ":2: invalid JSON"),
        (" " * (MAX_JSON_BYTES + 1), "bytes mlops reads"),
    ],
    ids=["recursion", "deep", "syntax", "huge"],
)
def test_hostile_json_is_refused(text: str, expected: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_json(text)
    assert expected in caught.value.located("f.json")


def _pipeline_repo(repo: Path) -> None:
    (repo / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (repo / "mlops.yaml").write_text(
        "stages:\n  a:\n    cmd: echo hi > a.txt\n    params: [train.lr]\n    outs: [a.txt]\n"
    )


# Each file mlops reads from a clone, the command that reads it, and how it is named.
FILES = {
    "mlops.yaml": (("run",), "mlops.yaml"),
    "params.yaml": (("run",), "params.yaml"),
    ".mlops/config.yaml": (("config", "cache.link"), ".mlops/config.yaml"),
    ".mlops/config.local.yaml": (("config", "cache.link"), ".mlops/config.local.yaml"),
    "data.csv.mlops": (("status",), "data.csv.mlops"),
}


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("case", ["alias bomb", "deep flow nesting", "huge document"])
def test_every_yaml_file_refuses_hostile_content(repo: Path, name: str, case: str) -> None:
    _pipeline_repo(repo)
    (repo / name).write_text(HOSTILE_YAML[case][0])
    args, shown = FILES[name]
    proc = run_subprocess(repo, *args, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlops: error: {shown}"), proc.stderr
    assert not (repo / "a.txt").exists()


@pytest.mark.parametrize("name", list(FILES))
def test_duplicate_keys_are_an_error_in_every_file(repo: Path, name: str) -> None:
    _pipeline_repo(repo)
    texts = {
        "mlops.yaml": "stages:\n  a:\n    cmd: echo 1\n  a:\n    cmd: echo 2\n",
        "params.yaml": "train:\n  lr: 0.1\n  lr: 0.2\n",
        ".mlops/config.yaml": "cache:\n  link: [copy]\ncache:\n  link: [hardlink]\n",
        ".mlops/config.local.yaml": "core:\n  remote: a\n  remote: b\n",
        "data.csv.mlops": f"path: data.csv\nalgo: blake3\nhash: {'0' * 64}\nhash: {'1' * 64}\n",
    }
    (repo / name).write_text(texts[name])
    args, shown = FILES[name]
    proc = run_subprocess(repo, *args)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"mlops: error: {shown}:"), proc.stderr
    assert "duplicate key" in proc.stderr and "(first on line" in proc.stderr


def test_unknown_pointer_key_suggests_the_known_one(repo: Path) -> None:
    (repo / "data.csv.mlops").write_text(
        f"path: data.csv\nalgo: blake3\nhash: {'0' * 64}\nsise: 3\n"
    )
    result = run_cli(repo, "status")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "mlops: error: data.csv.mlops:4: unknown key 'sise' (did you mean 'size'?)"
    )


def test_huge_pointer_is_not_read_whole(repo: Path) -> None:
    # A sparse 4 GiB pointer: reading it whole would take 4 GiB of memory.
    with open(repo / "data.csv.mlops", "wb") as handle:
        handle.truncate(4 << 30)
    proc = run_subprocess(repo, "status", timeout=60)
    assert proc.returncode == 1
    assert "data.csv.mlops: not a pointer file (over 1,048,576 bytes)" in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cahce:\n  link: [copy]\n", ":1: unknown key 'cahce' (did you mean 'cache'?)"),
        ("cache:\n  links: [copy]\n", ":2: unknown key 'cache.links' (did you mean 'link'?)"),
        ("core:\n  remtoe: origin\n", ":2: unknown key 'core.remtoe' (did you mean 'remote'?)"),
        ("cache: [copy]\n", ":1: 'cache' must be a mapping"),
    ],
)
def test_unknown_config_key_suggests_the_known_one(repo: Path, text: str, expected: str) -> None:
    (repo / ".mlops" / "config.yaml").write_text(text)
    result = run_cli(repo, "config", "core.remote")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"mlops: error: .mlops/config.yaml{expected}"


def test_config_refuses_to_write_an_unknown_key(repo: Path) -> None:
    before = (repo / ".mlops" / "config.yaml").read_bytes()
    result = run_cli(repo, "config", "cache.lnk", "[copy]")
    assert result.exit_code == 1
    assert "unknown key 'cache.lnk' (did you mean 'link'?)" in result.stderr
    assert (repo / ".mlops" / "config.yaml").read_bytes() == before


def test_deep_json_and_toml_params_are_refused(repo: Path) -> None:
    for name, text in (
        ("params.json", '{"train": ' + "[" * 50_000 + "]" * 50_000 + "}"),
        ("params.toml", "train = " + "[" * 50_000 + "]" * 50_000 + "\n"),
    ):
        (repo / name).write_text(text)
        (repo / "mlops.yaml").write_text(
            f"stages:\n  a:\n    cmd: echo hi > a.txt\n    params:\n      - {name}:\n"
            "        - train\n    outs: [a.txt]\n"
        )
        result = run_cli(repo, "run")
        assert result.exit_code == 1, result.stderr
        assert result.stderr.startswith(f"mlops: error: {name}"), result.stderr
        assert "nested" in result.stderr


def test_deep_lock_is_a_clear_error(repo: Path) -> None:
    _pipeline_repo(repo)
    (repo / "mlops.lock").write_text('{"stages": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run_cli(repo, "status")
    assert result.exit_code == 1
    assert "mlops.lock: invalid JSON: nested too deeply" in result.stderr


PIPELINE_ERRORS = {
    "cycle": (
        "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n"
        "  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n",
        "mlops.yaml:2: the stages form a cycle: a -> b -> a",
    ),
    "output twice": (
        "stages:\n  a:\n    cmd: x\n    outs: [o.txt]\n  b:\n    cmd: y\n    outs:\n"
        "      - p.txt\n      - o.txt\n",
        "mlops.yaml:9: output 'o.txt' is produced by two stages: 'a' and 'b'",
    ),
    "output inside output": (
        "stages:\n  a:\n    cmd: x\n    outs: [d]\n  b:\n    cmd: y\n    outs: [d/x]\n",
        "mlops.yaml:7: output 'd/x' of stage 'b' is inside output 'd' of stage 'a'",
    ),
    "missing dep": (
        "stages:\n  a:\n    cmd: x\n    deps:\n      - here.txt\n      - gone.txt\n",
        "mlops.yaml:6: stage 'a': dep 'gone.txt' does not exist and no stage produces it",
    ),
    "foreach missing dep": (
        "stages:\n  a:\n    foreach: [1, 2]\n    do:\n      cmd: x\n      deps:\n"
        "        - in${item}.txt\n",
        "mlops.yaml:7: stage 'a@2': dep 'in2.txt' does not exist and no stage produces it",
    ),
}


@pytest.mark.parametrize("case", list(PIPELINE_ERRORS))
def test_pipeline_errors_name_their_line(repo: Path, case: str) -> None:
    text, expected = PIPELINE_ERRORS[case]
    (repo / "mlops.yaml").write_text(text)
    (repo / "here.txt").write_text("x")
    (repo / "in1.txt").write_text("x")
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"mlops: error: {expected}"


NESTED_BOMB = "anchors:\n" + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())


def test_bomb_inside_params_a_stage_reads_is_refused(repo: Path) -> None:
    # Unguarded, flattening the section the stage reads walked all 9^9 nodes: a hang.
    (repo / "params.yaml").write_text(NESTED_BOMB + "train:\n  lr: 0.1\n  grid: *i\n")
    (repo / "mlops.yaml").write_text(
        "stages:\n  a:\n    cmd: echo hi > a.txt\n    params: [train]\n    outs: [a.txt]\n"
    )
    proc = run_subprocess(repo, "run", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mlops: error: params.yaml:1: invalid YAML: its aliases")


def test_bomb_inside_a_remote_is_refused(repo: Path) -> None:
    (repo / ".mlops" / "config.yaml").write_text(
        "remote:\n  x:\n    url: /nowhere\n    opts:\n"
        + "".join("      " + line + "\n" for line in ALIAS_BOMB.splitlines())
    )
    proc = run_subprocess(repo, "remote", "list", "--json", timeout=120)
    assert proc.returncode == 1
    assert "alias bomb" in proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 1  # under --json, the error on stdout too


# .gitignore (point 8) -------------------------------------------------------------------

# A data file's name, and a file beside it that a careless pattern would hide (or match).
GLOB_NAMES = {
    "*.csv": "real.csv",
    "a?b": "axb",
    "[ab].txt": "a.txt",
    "**": "other",
    "!important": "important",
    "#notes": "notes",
    "trail  ": "trail",
    " lead": "lead",
    "back\\slash": "backslash",
    "ends\\": "ends",
    "cr\r": "cr",
    "tab\t": "tab",
}


def _untracked(root: Path) -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "-z", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {entry[3:] for entry in out.split("\0") if entry}


def _ignored(root: Path, name: str) -> bool:
    proc = subprocess.run(["git", "check-ignore", "-q", "--", name], cwd=root, check=False)
    assert proc.returncode in (0, 1), proc
    return proc.returncode == 0


def test_gitignore_entries_match_exactly_their_file(repo: Path) -> None:
    for name in GLOB_NAMES:
        (repo / name).write_text("data")
        result = run_cli(repo, "add", "--", name)
        assert result.exit_code == 0, (name, result.stderr)
    for other in GLOB_NAMES.values():
        (repo / other).write_text("not data")
    untracked = _untracked(repo)
    for name, other in GLOB_NAMES.items():
        assert _ignored(repo, name), f"{name!r} is committable"
        assert name not in untracked
        assert not _ignored(repo, other), f"{name!r} hides {other!r} from Git"
        assert other in untracked and f"{name}.mlops" in untracked


def test_gitignore_of_the_user_is_kept_byte_for_byte(repo: Path) -> None:
    mine = b"# mine\r\n/build\r\n\xff\xfe odd bytes\n"
    (repo / ".gitignore").write_bytes(mine)
    (repo / "d.csv").write_text("data")
    assert run_cli(repo, "add", "d.csv").exit_code == 0
    assert (repo / ".gitignore").read_bytes() == mine + b"/d.csv\n"
    assert run_cli(repo, "add", "d.csv").exit_code == 0  # again: nothing added twice
    assert (repo / ".gitignore").read_bytes() == mine + b"/d.csv\n"


# Secrets (point 9) ----------------------------------------------------------------------

SECRET = "SuperSecret-0123456789"
CREDENTIAL_URLS = {
    "password": f"s3://AKIAEXAMPLE:{SECRET}@bucket/store",
    "query token": f"https://host.example/store?token={SECRET}&region=eu",
    "signed URL": f"https://host.example/store?X-Amz-Signature={SECRET}",
    "SAS": f"azure://container/store?sv=2024&sig={SECRET}",
}


@pytest.mark.parametrize("case", list(CREDENTIAL_URLS))
def test_credentials_in_a_url_stay_out_of_the_committed_config(repo: Path, case: str) -> None:
    url = CREDENTIAL_URLS[case]
    committed = repo / ".mlops" / "config.yaml"
    before = committed.read_bytes()
    for args in (
        ("remote", "add", "origin", url),
        ("config", "remote.origin.url", url),
        ("config", "remote.origin", json.dumps({"url": url})),
    ):
        result = run_cli(repo, *args)
        assert result.exit_code == 1, (args, result.stdout)
        assert "--local" in result.stderr and SECRET not in result.stderr + result.stdout
        assert committed.read_bytes() == before
    assert run_cli(repo, "config", "--local", "remote.origin.url", url).exit_code == 0
    assert SECRET in (repo / ".mlops" / "config.local.yaml").read_text()
    for args in (
        ("config", "remote.origin.url"),
        ("config", "remote"),
        ("config", "remote", "--json"),
        ("remote", "list"),
        ("remote", "list", "--json"),
    ):
        shown = run_cli(repo, *args)
        assert shown.exit_code == 0, shown.stderr
        assert SECRET not in shown.stdout and "***" in shown.stdout, (args, shown.stdout)


def test_config_masks_secret_options_and_refuses_them_committed(repo: Path) -> None:
    committed = repo / ".mlops" / "config.yaml"
    assert run_cli(repo, "remote", "add", "s3r", "s3://bucket/x").exit_code == 0
    before = committed.read_bytes()
    refused = run_cli(repo, "config", "remote.s3r.secret_access_key", SECRET)
    assert refused.exit_code == 1
    assert "mlops config --local remote.s3r.secret_access_key VALUE" in refused.stderr
    assert SECRET not in refused.stderr and committed.read_bytes() == before
    ok = run_cli(repo, "config", "--local", "remote.s3r.secret_access_key", SECRET)
    assert ok.exit_code == 0
    for args in (("remote.s3r.secret_access_key",), ("remote.s3r", "--json"), ("remote",)):
        shown = run_cli(repo, "config", *args)
        assert shown.exit_code == 0 and SECRET not in shown.stdout and "***" in shown.stdout


def test_local_config_is_private_and_made_so(repo: Path) -> None:
    local = repo / ".mlops" / "config.local.yaml"
    assert run_cli(repo, "config", "--local", "core.remote", "origin").exit_code == 0
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    local.chmod(0o644)  # as an editor or a copy might leave it
    assert run_cli(repo, "config", "core.remote").stdout.strip() == "origin"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert run_cli(repo, "config", "--local", "core.remote", "backup").exit_code == 0
    assert stat.S_IMODE(local.stat().st_mode) == 0o600


# The system refuses (point 6) -----------------------------------------------------------


def _mount(target: Path, *options: str) -> str | None:
    """Mount at ``target``; None when done, else why it cannot be done here."""
    proc = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    return None if proc.returncode == 0 else proc.stderr.strip() or "mount failed"


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A file system of 8 MiB: a tmpfs, else a loop-mounted ext4 image (skipped if neither)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    why = _mount(mount_point, "-t", "tmpfs", "-o", "size=8m", "tmpfs")
    if why:
        image = tmp_path / "disk.img"
        with open(image, "wb") as handle:
            handle.truncate(8 << 20)
        made = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True, check=False)
        why_loop = _mount(mount_point, "-o", "loop", str(image)) if made.returncode == 0 else "mkfs"
        if why_loop:
            pytest.skip(f"cannot mount a small file system here: tmpfs: {why}; loop: {why_loop}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _repo_in(folder: Path) -> Path:
    root = folder / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    assert run_cli(root, "init").exit_code == 0
    assert run_cli(root, "config", "cache.link", "[copy]").exit_code == 0
    return root


def _leftovers(root: Path) -> list[str]:
    """Temporary files anywhere in the work tree or the cache."""
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if ".git" not in path.relative_to(root).parts and path.name.endswith(".tmp")
    ]


def _one_line(stderr: str, *parts: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlops: error: "), stderr
    for part in parts:
        assert part in lines[0], stderr


def test_add_on_a_full_disk(small_disk: Path) -> None:
    root = _repo_in(small_disk)
    (root / "big.bin").write_bytes(os.urandom(5 << 20))  # fits once, not twice
    before = sorted(p.name for p in root.iterdir())
    proc = run_subprocess(root, "add", "big.bin")
    assert proc.returncode == 1
    _one_line(proc.stderr, "big.bin", "No space left on device", "free some space")
    assert _leftovers(root) == []
    assert sorted(p.name for p in root.iterdir()) == before  # no pointer, no .gitignore
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    assert run_subprocess(root, "add", "big.bin").returncode == 0


def test_checkout_on_a_full_disk(small_disk: Path) -> None:
    root = _repo_in(small_disk)
    data = os.urandom(3 << 20)
    (root / "big.bin").write_bytes(data)
    assert run_cli(root, "add", "big.bin").exit_code == 0
    (root / "big.bin").unlink()
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    (root / "filler").write_bytes(b"\0" * (free - (1 << 20)))
    proc = run_subprocess(root, "checkout")
    assert proc.returncode == 1
    _one_line(proc.stderr, "No space left on device", "free some space")
    assert not (root / "big.bin").exists() and _leftovers(root) == []
    (root / "filler").unlink()
    assert run_subprocess(root, "checkout").returncode == 0
    assert (root / "big.bin").read_bytes() == data


def test_read_only_cache(repo: Path) -> None:
    cache = repo / ".mlops" / "cache"
    why = _mount(cache, "--bind", str(cache))
    if why:
        pytest.skip(f"cannot bind-mount here: {why}")
    try:
        why = _mount(cache, "-o", "remount,ro,bind")
        if why:
            pytest.skip(f"cannot remount read-only here: {why}")
        (repo / "d.csv").write_text("a,b\n1,2\n")
        proc = run_subprocess(repo, "add", "d.csv")
        assert proc.returncode == 1
        _one_line(proc.stderr, ".mlops/cache", "Read-only file system", "remount it writable")
        assert not (repo / "d.csv.mlops").exists()
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)


def _as_user(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mlops args`` run without the power to write where the mode bits say no."""
    import shutil

    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a permission error")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mlops", *args], cwd=cwd, capture_output=True, text=True
    )


def test_unwritable_cache(repo: Path) -> None:
    # A cache shared with a user who made it read-only for others (mode 0555).
    cache = repo / ".mlops" / "cache"
    (repo / "d.csv").write_text("a,b\n1,2\n")
    cache.chmod(0o555)
    try:
        proc = _as_user("add", "d.csv", cwd=repo)
        assert proc.returncode == 1, proc.stderr
        _one_line(proc.stderr, ".mlops/cache", "Permission denied")
        assert not (repo / "d.csv.mlops").exists() and _leftovers(repo) == []
    finally:
        cache.chmod(0o755)


def test_unwritable_workspace_folder(repo: Path) -> None:
    folder = repo / "data"
    folder.mkdir()
    (folder / "d.csv").write_text("a,b\n1,2\n")
    assert run_cli(repo, "add", "data/d.csv").exit_code == 0
    (folder / "d.csv").unlink()
    (folder / "new.csv").write_text("new\n")
    folder.chmod(0o555)
    try:
        for args in (("checkout",), ("add", "data/new.csv")):
            proc = _as_user(*args, cwd=repo)
            assert proc.returncode == 1, proc.stderr
            _one_line(proc.stderr, "data", "check the owner")
        assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "d.csv.mlops", "new.csv"]
    finally:
        folder.chmod(0o755)


def test_file_name_too_long(repo: Path) -> None:
    (repo / "sub").mkdir()
    proc = run_subprocess(repo, "add", "a" * 300)  # checked before the file system is asked
    assert proc.returncode == 1
    _one_line(proc.stderr, "name too long for its pointer file", "rename it")
    proc = run_subprocess(repo, "add", "sub/" + "b" * 300 + "/x")
    assert proc.returncode == 1
    _one_line(proc.stderr, "File name too long", "use a shorter name")


def _stages(repo: Path, count: int) -> None:
    lines = ["stages:"]
    for i in range(count):
        dep = f"\n    deps: [o{i - 1}]" if i else ""
        lines.append(f"  s{i:05d}:\n    cmd: echo {i}{dep}\n    outs: [o{i}]")
    (repo / "mlops.yaml").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("args", [("dag",), ("status",), ("status", "--json")])
def test_output_into_head_ends_quietly(repo: Path, args: tuple[str, ...]) -> None:
    _stages(repo, 3000)  # far more than a pipe holds
    command = " ".join([sys.executable, "-m", "mlops", *args])
    proc = subprocess.run(
        f"{command} 2>err.txt | head -n 1; echo ${{PIPESTATUS[0]}} > rc.txt",
        shell=True,
        executable="/bin/bash",
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 1
    assert (repo / "err.txt").read_text() == ""
    assert (repo / "rc.txt").read_text().strip() in ("0", "1")  # never 3 (internal error)


def test_output_into_a_pipe_closed_at_once(repo: Path) -> None:
    (repo / "d.csv").write_text("x")
    for args in (("config", "cache.link"), ("remote", "list"), ("add", "d.csv")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", *args],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before anything is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) in (0, 1) and err == "", err


def test_read_only_state_database_costs_only_speed(repo: Path) -> None:
    """The state database only remembers hashes: one that cannot be written does not fail
    an ``add`` that has stored the object and written the pointer (it used to exit 1
    after doing both); the next commands just hash again."""
    (repo / "d.csv").write_text("a\n")
    assert run_cli(repo, "add", "d.csv").exit_code == 0
    (repo / "e.csv").write_text("b\n")
    databases = list((repo / ".mlops").glob("state.db*"))
    for db in databases:
        db.chmod(0o444)
    try:
        proc = _as_user("add", "e.csv", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        assert (repo / "e.csv.mlops").is_file()
        proc = _as_user("status", cwd=repo)
        assert proc.returncode == 0, proc.stderr
    finally:
        for db in databases:
            db.chmod(0o644)


def test_stage_outputs_with_glob_names_are_ignored_exactly(repo: Path) -> None:
    (repo / "mlops.yaml").write_text(
        "stages:\n  a:\n    cmd: echo 1 > 'o[1].csv' && echo 2 > '*.txt'\n"
        "    outs: ['o[1].csv', '*.txt']\n"
    )
    assert run_cli(repo, "run").exit_code == 0
    (repo / "o1.csv").write_text("mine")
    (repo / "notes.txt").write_text("mine")
    assert _ignored(repo, "o[1].csv") and _ignored(repo, "*.txt")
    assert not _ignored(repo, "o1.csv") and not _ignored(repo, "notes.txt")
    assert {"o1.csv", "notes.txt"} <= _untracked(repo)
