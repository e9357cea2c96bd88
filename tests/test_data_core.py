"""The data versioning core: init, add, status, checkout, diff, gc, fsck, unprotect, config."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.repos import commit_all, git, init_git


def cache_path(repo: Path, oid: str) -> Path:
    return repo / ".mlops" / "cache" / oid[:2] / oid[2:]


def pointer(repo: Path, rel: str) -> dict[str, object]:
    import yaml

    return yaml.safe_load((repo / f"{rel}.mlops").read_text())


def make_folder(root: Path) -> Path:
    data = root / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "empty.txt").write_bytes(b"")
    (data / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "deeper" / "c.bin").write_bytes(os.urandom(5000))
    script = data / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return data


# --- init ---------------------------------------------------------------------------------


def test_init_creates_layout_and_second_init_changes_nothing(git_repo: Path) -> None:
    first = run_cli(git_repo, "init")
    assert first.exit_code == 0
    assert (git_repo / ".mlops" / "config.yaml").is_file()
    ignore = (git_repo / ".mlops" / ".gitignore").read_text()
    for entry in ("/cache/", "/state.db*", "/runs.db*", "/config.local.yaml"):
        assert entry in ignore
    before = {p: p.stat().st_mtime_ns for p in (git_repo / ".mlops").rglob("*")}
    second = run_cli(git_repo, "init")
    assert second.exit_code == 0
    assert "already set up" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in (git_repo / ".mlops").rglob("*")} == before
    # Git sees config and .gitignore but not the cache.
    status = git(git_repo, "status", "--porcelain", "--untracked-files=all")
    assert ".mlops/config.yaml" in status and ".mlops/cache" not in status


def test_init_outside_git_fails(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "init")
    assert result.exit_code == 1
    assert "not a Git repository" in result.stderr
    assert not (tmp_path / ".mlops").exists()


def test_commands_need_init(git_repo: Path) -> None:
    for args in (["status"], ["add", "x"], ["checkout"], ["gc"], ["diff"]):
        result = run_cli(git_repo, *args)
        assert result.exit_code == 1, args
        assert "run `mlops init` first" in result.stderr


# --- add ----------------------------------------------------------------------------------


def test_add_file_writes_pointer_ignore_and_read_only_object(repo: Path) -> None:
    content = os.urandom(100_000)
    (repo / "raw.bin").write_bytes(content)
    result = run_cli(repo, "add", "raw.bin")
    assert result.exit_code == 0, result.stderr
    record = pointer(repo, "raw.bin")
    oid = blake3(content).hexdigest()
    assert record == {"path": "raw.bin", "algo": "blake3", "hash": oid, "size": 100_000, "files": 1}
    obj = cache_path(repo, oid)
    assert obj.read_bytes() == content
    assert not obj.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert (repo / "raw.bin").read_bytes() == content
    assert "/raw.bin" in (repo / ".gitignore").read_text().splitlines()
    assert "raw.bin\n" not in git(repo, "status", "--porcelain")


def test_add_folder_keeps_structure_empty_files_and_exec_bits(repo: Path) -> None:
    data = make_folder(repo)
    result = run_cli(repo, "add", "data", "--json")
    assert result.exit_code == 0, result.stderr
    (added,) = json.loads(result.stdout)
    assert added["files"] == 5 and added["oid"].endswith(".dir")
    manifest = json.loads(cache_path(repo, added["oid"]).read_bytes())
    rows = {row[0]: row for row in manifest["files"]}
    assert sorted(rows) == ["a.txt", "empty.txt", "run.sh", "sub/b.csv", "sub/deeper/c.bin"]
    assert rows["run.sh"][3] == 1 and rows["a.txt"][3] == 0
    assert rows["empty.txt"][2] == 0
    # Restore into an empty workspace: same bytes and the executable bit.
    snapshot = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    import shutil

    shutil.rmtree(data)
    assert run_cli(repo, "checkout").exit_code == 0
    assert {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()} == snapshot
    assert os.access(data / "run.sh", os.X_OK)
    assert not os.access(data / "a.txt", os.X_OK)


def test_symlink_to_file_inside_folder_is_stored_as_its_content(repo: Path) -> None:
    data = make_folder(repo)
    (data / "link.txt").symlink_to("a.txt")
    assert run_cli(repo, "add", "data").exit_code == 0
    assert run_cli(repo, "status", "--exit-code").exit_code == 0
    (data / "link.txt").unlink()
    assert run_cli(repo, "checkout").exit_code == 0
    assert not (data / "link.txt").is_symlink()
    assert (data / "link.txt").read_text() == "alpha\n"


@pytest.mark.parametrize("kind", ["dir", "broken"])
def test_bad_symlinks_inside_folder_are_refused(repo: Path, kind: str) -> None:
    data = make_folder(repo)
    (data / "link").symlink_to("sub" if kind == "dir" else "nowhere")
    result = run_cli(repo, "add", "data")
    assert result.exit_code == 1
    assert "link" in result.stderr
    assert "folder" in result.stderr if kind == "dir" else "broken" in result.stderr
    assert not (repo / "data.mlops").exists()


def test_hardlink_mode_shares_inode_read_only_and_unprotect(repo: Path) -> None:
    assert run_cli(repo, "config", "cache.link", "[hardlink, copy]").exit_code == 0
    (repo / "model.bin").write_bytes(b"weights" * 1000)
    assert run_cli(repo, "add", "model.bin").exit_code == 0
    oid = str(pointer(repo, "model.bin")["hash"])
    assert (repo / "model.bin").stat().st_ino == cache_path(repo, oid).stat().st_ino
    assert not os.stat(repo / "model.bin").st_mode & stat.S_IWUSR
    assert run_cli(repo, "unprotect", "model.bin").exit_code == 0
    assert (repo / "model.bin").stat().st_ino != cache_path(repo, oid).stat().st_ino
    with open(repo / "model.bin", "ab") as handle:  # editable now
        handle.write(b"more")
    assert cache_path(repo, oid).read_bytes() == b"weights" * 1000
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["data"][0]["workspace"] == "modified"


def test_readd_changed_folder_stores_only_changed_files(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    (data / "a.txt").write_text("changed\n")
    result = json.loads(run_cli(repo, "add", "data", "--json").stdout)
    # The changed file is the only new file object.
    assert result[0]["stored"] == 1
    assert run_cli(repo, "status", "--exit-code").exit_code == 0


def test_readd_trusts_only_files_whose_stat_is_unchanged(repo: Path) -> None:
    assert run_cli(repo, "config", "cache.link", "[hardlink, copy]").exit_code == 0
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    # An editable copy with the same bytes, a file changed, one added, one removed.
    assert run_cli(repo, "unprotect", "data/sub/b.csv").exit_code == 0
    (data / "a.txt").unlink()
    (data / "a.txt").write_text("changed\n")
    (data / "new.txt").write_text("new\n")
    (data / "empty.txt").unlink()
    result = json.loads(run_cli(repo, "add", "data", "--json").stdout)
    assert result[0]["stored"] == 2  # a.txt and new.txt
    manifest = json.loads(cache_path(repo, result[0]["oid"]).read_bytes())["files"]
    hashes = {path: oid for path, oid, _size, _exec in manifest}
    for rel in ("a.txt", "new.txt", "sub/b.csv", "sub/deeper/c.bin", "run.sh"):
        assert hashes[rel] == blake3((data / rel).read_bytes()).hexdigest()
        assert (data / rel).stat().st_ino == cache_path(repo, hashes[rel]).stat().st_ino
    assert "empty.txt" not in hashes
    # After gc replaced the cache's generation, nothing is taken on trust and all still holds.
    assert run_cli(repo, "gc").exit_code == 0
    (data / "new.txt").unlink()
    again = json.loads(run_cli(repo, "add", "data", "--json").stdout)
    assert again[0]["stored"] == 0 and again[0]["files"] == 4  # no file content is new
    assert run_cli(repo, "status", "--exit-code").exit_code == 0


def test_readd_sees_what_stat_lines_leave_out(repo: Path) -> None:
    """Re-add trusts a file whose stat line is as when the folder was stored, but still
    takes its executable bit from now, and relinks it when it shares no inode with the
    cache (here: the link type changed from copy to hardlink)."""
    assert run_cli(repo, "config", "cache.link", "[copy]").exit_code == 0
    data = make_folder(repo)
    (data / "more").mkdir()
    (data / "more" / "d.txt").write_text("delta\n")
    assert run_cli(repo, "add", "data").exit_code == 0
    (data / "sub" / "b.csv").chmod(0o755)  # same content and mtime: only the mode differs
    (data / "a.txt").write_text("changed\n")

    def readd() -> list[list[Any]]:
        result = run_subprocess(repo, "add", "--json", "data")  # worker processes scan
        assert result.returncode == 0, result.stderr
        added = json.loads(result.stdout)[0]
        assert added["files"] == 6
        files: list[list[Any]] = json.loads(cache_path(repo, added["oid"]).read_bytes())["files"]
        assert sorted(p for p, _oid, _size, x in files if x) == ["run.sh", "sub/b.csv"]
        for path, oid, size, _exec in files:
            assert blake3((data / path).read_bytes()).hexdigest() == oid
            assert (data / path).stat().st_size == size
        assert run_cli(repo, "status", "--exit-code").exit_code == 0
        return files

    readd()
    assert run_cli(repo, "config", "cache.link", "[hardlink, copy]").exit_code == 0
    for path, oid, _size, _exec in readd():
        assert (data / path).stat().st_ino == cache_path(repo, oid).stat().st_ino


# --- status -------------------------------------------------------------------------------


def test_status_reports_each_state(repo: Path) -> None:
    data = make_folder(repo)
    (repo / "one.txt").write_text("one")
    (repo / "two.txt").write_text("two")
    assert run_cli(repo, "add", "data", "one.txt", "two.txt").exit_code == 0
    clean = run_cli(repo, "status", "--exit-code")
    assert clean.exit_code == 0 and "up to date" in clean.stdout
    (data / "a.txt").write_text("new text")
    (data / "sub" / "b.csv").unlink()
    (data / "added.txt").write_text("+")
    (repo / "one.txt").unlink()
    two_oid = str(pointer(repo, "two.txt")["hash"])
    cache_path(repo, two_oid).unlink()
    result = run_cli(repo, "status", "--json", "--exit-code")
    assert result.exit_code == 1
    by_path = {row["path"]: row for row in json.loads(result.stdout)["data"]}
    assert by_path["data"]["workspace"] == "modified"
    assert by_path["data"]["modified"] == ["a.txt"]
    assert by_path["data"]["deleted"] == ["sub/b.csv"]
    assert by_path["data"]["added"] == ["added.txt"]
    assert by_path["one.txt"]["workspace"] == "missing"
    assert by_path["two.txt"]["cache"] == "missing"
    text = run_cli(repo, "status").stdout
    assert "modified: a.txt" in text and "one.txt: missing" in text


def test_status_does_not_import_heavy_libraries(repo: Path) -> None:
    (repo / "f.txt").write_text("x")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    code = (
        "import sys\nfrom mlops.cli import main\nsys.argv=['mlops','status']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=('pandas','sklearn','git','fsspec','numpy','rich','yaml',\n"
        "       'mlops.pipeline.schema','mlops.cli.pipeline','mlops.cli.registry',\n"
        "       'tempfile','concurrent.futures','logging')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_each_command_loads_from_the_module_the_cli_names() -> None:
    import subprocess
    import sys

    # In a fresh interpreter: which commands appear as each command module is imported.
    code = (
        "import importlib\n"
        "from mlops.cli import COMMAND_MODULES\n"
        "from mlops.cli.app import app\n"
        "def names():\n"
        "    commands = app.registered_commands\n"
        "    return {c.name or c.callback.__name__.replace('_', '-') for c in commands}"
        " | {g.name for g in app.registered_groups}\n"
        "for module in COMMAND_MODULES:\n"
        "    before = names()\n"
        "    importlib.import_module('mlops.cli.' + module)\n"
        "    for name in sorted(names() - before):\n"
        "        print(name, module)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from mlops.cli import COMMAND_MODULE

    found = dict(line.split() for line in out.stdout.splitlines())
    assert found == COMMAND_MODULE


def test_global_options_before_the_command_and_help_of_every_command(repo: Path) -> None:
    quiet = run_subprocess(repo, "-q", "--debug", "status")
    assert quiet.returncode == 0 and quiet.stdout == ""
    top = run_subprocess(repo, "--help")
    from mlops.cli import COMMAND_MODULE

    assert all(name in top.stdout for name in COMMAND_MODULE)
    assert "Usage: mlops model" in run_subprocess(repo, "model", "--help").stdout
    unknown = run_subprocess(repo, "no-such-command")
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


# --- checkout -----------------------------------------------------------------------------


def test_checkout_follows_git_checkout(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "v1")
    (data / "a.txt").write_text("version two\n")
    (data / "new.txt").write_text("new\n")
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "v2")
    git(repo, "checkout", "-q", "HEAD~1")
    assert run_cli(repo, "status", "--exit-code").exit_code == 1
    result = run_cli(repo, "checkout")
    assert result.exit_code == 0, result.stderr
    assert (data / "a.txt").read_text() == "alpha\n"
    assert not (data / "new.txt").exists()
    assert run_cli(repo, "status", "--exit-code").exit_code == 0
    git(repo, "checkout", "-q", "main")
    assert run_cli(repo, "checkout").exit_code == 0
    assert (data / "a.txt").read_text() == "version two\n"
    assert (data / "new.txt").read_text() == "new\n"


def test_checkout_refuses_to_lose_uncached_work_unless_forced(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    (data / "a.txt").write_text("my unsaved edit\n")
    (data / "scratch.txt").write_text("notes\n")
    refused = run_cli(repo, "checkout")
    assert refused.exit_code == 1
    assert "data/a.txt" in refused.stderr and "--force" in refused.stderr
    assert (data / "a.txt").read_text() == "my unsaved edit\n"
    assert (data / "scratch.txt").exists()
    forced = run_cli(repo, "checkout", "--force")
    assert forced.exit_code == 0
    assert "data/a.txt" in forced.stdout and "data/scratch.txt" in forced.stdout
    assert (data / "a.txt").read_text() == "alpha\n"
    assert not (data / "scratch.txt").exists()


def test_checkout_removes_extra_files_whose_content_is_cached(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    (data / "copy-of-a.txt").write_text("alpha\n")  # same bytes as a cached object
    assert run_cli(repo, "checkout").exit_code == 0
    assert not (data / "copy-of-a.txt").exists()


def test_checkout_refuses_corrupt_object_and_changes_nothing(repo: Path) -> None:
    (repo / "f.txt").write_text("good content")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    oid = str(pointer(repo, "f.txt")["hash"])
    obj = cache_path(repo, oid)
    obj.chmod(0o644)
    obj.write_text("evil content")
    (repo / "f.txt").unlink()
    result = run_cli(repo, "checkout")
    assert result.exit_code == 1
    assert "corrupt" in result.stderr and "set aside" in result.stderr
    assert not (repo / "f.txt").exists()
    # Set aside at once: nothing uses it again, and status says what happened.
    assert not obj.exists() and (repo / ".mlops" / "corrupt" / oid).exists()
    status = run_cli(repo, "status", "--json")
    assert json.loads(status.stdout)["data"][0]["corrupt_objects"] == 1
    assert "found corrupt" in run_cli(repo, "status").stdout


def test_checkout_with_object_missing_from_cache(repo: Path) -> None:
    (repo / "f.txt").write_text("content")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    cache_path(repo, str(pointer(repo, "f.txt")["hash"])).unlink()
    (repo / "f.txt").unlink()
    result = run_cli(repo, "checkout")
    assert result.exit_code == 1
    assert "f.txt" in result.stderr and "mlops pull" in result.stderr


def test_checkout_of_a_folder_with_one_object_missing_places_nothing(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    cache_path(repo, blake3((data / "a.txt").read_bytes()).hexdigest()).unlink()
    shutil.rmtree(data)
    result = run_cli(repo, "checkout", "data")
    assert result.exit_code == 1
    assert "data: 1 object(s) are not in the cache" in result.stderr
    assert "mlops pull" in result.stderr
    assert not data.exists()  # not one of the files whose objects are there


@pytest.mark.parametrize("harm", ["missing", "corrupt"])
def test_checkout_of_many_files_verifies_in_worker_processes(repo: Path, harm: str) -> None:
    """Past SHARE_MIN_FILES objects, worker processes stat them and ask the state about
    their own share (on connections of their own): a missing or corrupt one among them is
    still found, and nothing is placed."""
    from mlops.storage.cache import SHARE_MIN_FILES

    data = repo / "many"
    for i in range(SHARE_MIN_FILES + 200):
        (data / f"g{i % 7}").mkdir(parents=True, exist_ok=True)
        (data / f"g{i % 7}" / f"{i}.txt").write_text(f"file {i}\n")
    assert run_cli(repo, "add", "many").exit_code == 0
    victim = cache_path(repo, blake3(b"file 777\n").hexdigest())
    if harm == "missing":
        victim.unlink()
    else:
        victim.chmod(0o644)
        victim.write_text("file 778\n")  # a new mtime: the state no longer vouches for it
    shutil.rmtree(data)
    result = run_subprocess(repo, "checkout", "many")
    assert result.returncode == 1
    expected = "1 object(s) are not in the cache" if harm == "missing" else "corrupt"
    assert expected in result.stderr
    assert not data.exists()
    assert "many: missing" in run_subprocess(repo, "status").stdout  # the state still sound


# --- diff ---------------------------------------------------------------------------------


def test_diff_between_commits_and_workspace(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "v1")
    (data / "a.txt").write_text("changed\n")
    (data / "sub" / "b.csv").unlink()
    (data / "z.txt").write_text("z")
    (repo / "extra.txt").write_text("e")
    assert run_cli(repo, "add", "data", "extra.txt").exit_code == 0
    commit_all(repo, "v2")
    head = git(repo, "rev-parse", "HEAD").strip()
    result = run_cli(repo, "diff", "HEAD~1", "HEAD", "--json")
    assert result.exit_code == 0, result.stderr
    changes = {c["path"]: c["change"] for c in json.loads(result.stdout)}
    assert changes == {
        "data/a.txt": "modified",
        "data/sub/b.csv": "deleted",
        "data/z.txt": "added",
        "extra.txt": "added",
    }
    assert git(repo, "rev-parse", "HEAD").strip() == head  # nothing was checked out
    assert (data / "a.txt").read_text() == "changed\n"
    # Against the workspace: an edit not yet added shows up.
    (repo / "extra.txt").write_text("edited")
    ws = json.loads(run_cli(repo, "diff", "--json").stdout)
    assert [(c["path"], c["change"]) for c in ws] == [("extra.txt", "modified")]
    assert "~ modified extra.txt" in run_cli(repo, "diff").stdout


def test_diff_of_folders_a_file_replaces_and_a_broken_manifest(repo: Path) -> None:
    """A folder becoming a file (and back) lists every file; a manifest in the cache that
    is not a manifest any more is a one-line error naming it."""
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "folder")
    folder_oid = (repo / "data.mlops").read_text().split("hash: ")[1].split()[0]
    shutil.rmtree(data)
    data.write_text("now a file")
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "file")
    result = run_cli(repo, "diff", "HEAD~1", "HEAD", "--json")
    changes = {c["path"]: c["change"] for c in json.loads(result.stdout)}
    assert changes["data"] == "added"
    deleted = {p for p, c in changes.items() if c == "deleted"}
    assert deleted == {
        f"data/{n}" for n in ("a.txt", "empty.txt", "sub/b.csv", "sub/deeper/c.bin", "run.sh")
    }
    # Break the first version's manifest in the cache; diff against a second folder version.
    data.unlink()
    make_folder(repo)
    (repo / "data" / "a.txt").write_text("third")
    assert run_cli(repo, "add", "data").exit_code == 0
    commit_all(repo, "folder again")
    cached = repo / ".mlops" / "cache" / folder_oid[:2] / folder_oid[2:]
    cached.chmod(0o644)
    cached.write_text("{not json")
    result = run_cli(repo, "diff", "HEAD~2", "HEAD")
    assert result.exit_code == 1
    assert folder_oid in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_diff_unknown_revision(repo: Path) -> None:
    result = run_cli(repo, "diff", "no-such-rev")
    assert result.exit_code == 1 and "no-such-rev" in result.stderr


# --- gc -----------------------------------------------------------------------------------


def test_gc_keeps_what_branches_and_tags_need(repo: Path) -> None:
    (repo / "f.txt").write_text("v1")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    commit_all(repo, "v1")
    v1 = str(pointer(repo, "f.txt")["hash"])
    git(repo, "tag", "v1")
    (repo / "f.txt").write_text("v2")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    commit_all(repo, "v2")
    (repo / "f.txt").write_text("v3")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    commit_all(repo, "v3")
    v3 = str(pointer(repo, "f.txt")["hash"])
    (repo / "f.txt").write_text("never committed")
    assert run_cli(repo, "add", "f.txt").exit_code == 0
    current = str(pointer(repo, "f.txt")["hash"])
    dry = json.loads(run_cli(repo, "gc", "--dry-run", "--json").stdout)
    assert dry["removed"] == 1 and dry["bytes"] == 2 and dry["dry_run"]
    assert len(list((repo / ".mlops" / "cache").rglob("*"))) > 0
    kept_all = json.loads(run_cli(repo, "gc", "--all-commits", "--json").stdout)
    assert kept_all["removed"] == 0
    result = json.loads(run_cli(repo, "gc", "--json").stdout)
    assert result["removed"] == 1
    for oid in (v1, v3, current):  # tag, branch head and workspace
        assert cache_path(repo, oid).exists()


# --- config -------------------------------------------------------------------------------


def test_config_read_write_and_invalid(repo: Path) -> None:
    assert run_cli(repo, "config", "cache.link").stdout.strip() == "reflink, copy"
    assert run_cli(repo, "config", "cache.link", "[symlink, copy]").exit_code == 0
    assert run_cli(repo, "config", "cache.link", "--json").stdout.strip().startswith("[")
    bad = run_cli(repo, "config", "cache.link", "[teleport]")
    assert bad.exit_code == 1 and "teleport" in bad.stderr
    assert "symlink" in (repo / ".mlops" / "config.yaml").read_text()
    missing = run_cli(repo, "config", "no.such.key")
    assert missing.exit_code == 1 and "no.such.key" in missing.stderr


def test_symlink_link_type_round_trip(repo: Path) -> None:
    assert run_cli(repo, "config", "cache.link", "[symlink]").exit_code == 0
    data = make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    assert (data / "a.txt").is_symlink()
    assert run_cli(repo, "status", "--exit-code").exit_code == 0
    import shutil

    shutil.rmtree(data)
    assert run_cli(repo, "checkout").exit_code == 0
    assert (data / "a.txt").read_text() == "alpha\n"


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("nothing-here.csv", "no such file"),
        ("../outside.csv", "outside the repository"),
        (".git/config", "inside .git/"),
        (".mlops/config.yaml", "inside .mlops/"),
    ],
)
def test_add_bad_paths(repo: Path, arg: str, message: str) -> None:
    (repo.parent / "outside.csv").write_text("x")
    result = run_cli(repo, "add", arg)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not [p for p in repo.rglob("*.mlops") if p.is_file()]


def test_add_path_tracked_by_git_says_how_to_untrack(repo: Path) -> None:
    (repo / "data.csv").write_text("a,b\n")
    commit_all(repo, "data in git")
    result = run_cli(repo, "add", "data.csv")
    assert result.exit_code == 1
    assert "git rm -r --cached data.csv" in result.stderr
    assert not (repo / "data.csv.mlops").exists()


def test_add_overlapping_tracked_paths_is_refused(repo: Path) -> None:
    data = make_folder(repo)
    assert run_cli(repo, "add", "data/a.txt").exit_code == 0
    result = run_cli(repo, "add", "data")
    assert result.exit_code == 1 and "overlaps data/a.txt" in result.stderr
    assert not (repo / "data.mlops").exists()
    assert data.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path: f.txt\nhash: [unclosed\n", "f.txt.mlops:3: invalid YAML: did not find expected"),
        ('path: "f.txt"\nalgo: md5\nhash: abc\n', "unknown hash algorithm 'md5'"),
        ('path: "f.txt"\nalgo: blake3\nhash: nothex\n', "not a valid blake3 hash"),
        ('path: "../../etc"\nalgo: blake3\nhash: ' + "a" * 64 + "\n", "key 'path'"),
    ],
)
def test_broken_pointer_files(repo: Path, text: str, message: str) -> None:
    (repo / "f.txt.mlops").write_text(text)
    for command in ("status", "checkout", "diff"):
        result = run_cli(repo, command)
        assert result.exit_code == 1, command
        assert message in result.stderr, (command, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_cache_folder_that_cannot_be_written(repo: Path) -> None:
    cache = repo / ".mlops" / "cache"
    (repo / "f.txt").write_text("content")
    if os.geteuid() == 0:  # root ignores permission bits; the immutable flag still binds it
        import subprocess

        if subprocess.run(["chattr", "+i", str(cache)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a folder unwritable for root here")
    else:
        cache.chmod(0o500)
    try:
        result = run_cli(repo, "add", "f.txt")
    finally:
        if os.geteuid() == 0:
            import subprocess

            subprocess.run(["chattr", "-i", str(cache)], check=True)
        else:
            cache.chmod(0o755)
    assert result.exit_code == 1
    assert "cannot write to the cache folder" in result.stderr
    assert not (repo / "f.txt.mlops").exists()
    assert (repo / "f.txt").read_text() == "content"


def test_killed_in_the_middle_of_add_leaves_no_partial_object(repo: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    big = repo / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(64):
            handle.write(os.urandom(1 << 20))
    digest = blake3(big.read_bytes()).hexdigest()
    proc = subprocess.Popen([sys.executable, "-m", "mlops", "add", "big.bin"], cwd=repo)
    cache = repo / ".mlops" / "cache"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.endswith(".tmp") for p in cache.rglob(".*")):
            break
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert blake3(big.read_bytes()).hexdigest() == digest  # the user's file is intact
    for obj in cache.rglob("*"):
        if obj.is_file() and not obj.name.startswith("."):
            oid = obj.parent.name + obj.name
            assert blake3(obj.read_bytes()).hexdigest() == oid, "a partial object is visible"
    pointer_file = repo / "big.bin.mlops"
    if pointer_file.exists():  # the kill came after the pointer: then it must be complete
        assert pointer(repo, "big.bin")["hash"] == digest
    # Running it again completes the snapshot.
    assert run_cli(repo, "add", "big.bin").exit_code == 0
    assert cache_path(repo, digest).exists()


def test_cli_as_subprocess_and_exit_codes(repo: Path) -> None:
    (repo / "f.txt").write_text("x")
    ok = run_subprocess(repo, "add", "f.txt")
    assert ok.returncode == 0, ok.stderr
    usage = run_subprocess(repo, "add", "--no-such-flag")
    assert usage.returncode == 2
    missing = run_subprocess(repo, "add", "ghost.txt")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "mlops: error: ghost.txt: no such file or folder"


def test_every_command_has_help(repo: Path) -> None:
    from typer.main import get_command

    from mlops.cli import load_app

    group = get_command(load_app())
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help or command.short_help, f"{name} has no help text"


def test_not_a_git_repo_for_add(tmp_path: Path) -> None:
    other = init_git(tmp_path / "plain")
    (tmp_path / "x").mkdir()
    result = run_cli(tmp_path / "x", "status")
    assert result.exit_code == 1 and "not a Git repository" in result.stderr
    assert other.exists()


def test_status_notices_a_wiped_cache_after_a_quick_clean_status(repo: Path) -> None:
    import shutil

    make_folder(repo)
    assert run_cli(repo, "add", "data").exit_code == 0
    assert run_cli(repo, "status", "--exit-code").exit_code == 0
    shutil.rmtree(repo / ".mlops" / "cache")
    result = run_cli(repo, "status", "--json", "--exit-code")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["data"][0]["cache"] == "missing"


def make_many_files(root: Path, count: int) -> dict[str, bytes]:
    """``count`` small files in 10 folders; every tenth repeats an earlier file's content."""
    contents: dict[str, bytes] = {}
    for i in range(count):
        rel = f"part{i % 10}/f{i}.txt"
        data = contents[f"part0/f{i - 10}.txt"] if i % 10 == 0 and i >= 20 else os.urandom(64)
        contents[rel] = data
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


@pytest.mark.parametrize("link", ["[hardlink, copy]", "[copy]"])
def test_add_of_thousands_of_files_in_worker_processes(repo: Path, link: str) -> None:
    assert run_cli(repo, "config", "cache.link", link).exit_code == 0
    contents = make_many_files(repo / "many", 1500)
    (repo / "many" / "part3" / "f3.txt").chmod(0o755)
    result = run_subprocess(repo, "add", "--jobs", "2", "many")
    assert result.returncode == 0, result.stderr
    manifest_oid = pointer(repo, "many")["hash"]
    assert isinstance(manifest_oid, str)
    files = json.loads(cache_path(repo, manifest_oid).read_bytes())["files"]
    assert {path: oid for path, oid, _size, _exec in files} == {
        rel: blake3(data).hexdigest() for rel, data in contents.items()
    }
    assert [p for p, _oid, _size, executable in files if executable] == ["part3/f3.txt"]
    for data in contents.values():
        assert cache_path(repo, blake3(data).hexdigest()).read_bytes() == data
    if "hardlink" in link:
        assert (repo / "many" / "part5" / "f5.txt").stat().st_nlink == 2
    # What the worker processes learnt reached the state cache: status is clean and
    # a second add has nothing left to store.
    assert "up to date" in run_cli(repo, "status").stdout
    # New mtimes: status hashes every file again (in worker processes) and finds them same.
    for rel in contents:
        os.utime(repo / "many" / rel, ns=(1_000_000_000, 1_000_000_000))
    assert "up to date" in run_subprocess(repo, "status", "--jobs", "2").stdout
    again = run_cli(repo, "add", "many")
    assert again.exit_code == 0 and "0 new objects" in again.stdout
    shutil_rmtree(repo / "many")
    assert run_cli(repo, "checkout", "many").exit_code == 0
    assert (repo / "many" / "part7" / "f1007.txt").read_bytes() == contents["part7/f1007.txt"]


def shutil_rmtree(path: Path) -> None:
    import shutil

    def writable(func, target, _exc):  # type: ignore[no-untyped-def]
        os.chmod(os.path.dirname(target), 0o755)
        func(target)

    shutil.rmtree(path, onerror=writable)


def test_an_error_in_a_worker_process_reaches_the_user(repo: Path) -> None:
    contents = make_many_files(repo / "many", 1200)
    # Every fan-out folder exists; the one that one file's object needs cannot be written.
    cache = repo / ".mlops" / "cache"
    for i in range(256):
        (cache / f"{i:02x}").mkdir(exist_ok=True)
    blocked = cache / blake3(contents["part9/f1199.txt"]).hexdigest()[:2]
    if os.geteuid() == 0:
        import subprocess

        if subprocess.run(["chattr", "+i", str(blocked)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a folder unwritable for root here")
    else:
        blocked.chmod(0o500)
    try:
        result = run_subprocess(repo, "add", "--jobs", "2", "many")
    finally:
        if os.geteuid() == 0:
            import subprocess

            subprocess.run(["chattr", "-i", str(blocked)], check=True)
        else:
            blocked.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("mlops: error: cannot write to the cache folder")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (repo / "many.mlops").exists()
    for rel, data in contents.items():
        assert (repo / "many" / rel).read_bytes() == data


def test_manifest_bytes_are_canonical_json() -> None:
    from mlops.storage.manifest import Entry, build_manifest, parse_manifest

    paths = ["plain.txt", 'quote"d.csv', "back\\slash", "tab\there", "ünï/cødé ✓.bin", "z/\x01"]
    entries = [Entry(p, f"{i:064x}", i * 1000, i % 2 == 0) for i, p in enumerate(paths)]
    manifest = build_manifest(list(reversed(entries)))
    rows = [[e.path, e.oid, e.size, int(e.executable)] for e in sorted(entries)]
    doc = {"algo": "blake3", "fields": ["path", "hash", "size", "exec"], "files": rows}
    assert manifest.to_bytes() == json.dumps(doc, separators=(",", ":")).encode()
    assert parse_manifest(manifest.to_bytes(), "x.dir") == manifest


@pytest.mark.parametrize(
    ("path", "oid"),
    [
        ("../up.txt", None),
        ("a/../../up.txt", None),
        ("/etc/passwd", None),
        ("a//b", None),
        ("a/./b", None),
        ("a/", None),
        ("", None),
        (".", None),
        (".git/config", None),
        ("sub/.GIT/hooks/post-checkout", None),
        (".mlops", None),
        ("a/.Mlops/cache", None),
        ("nul\x00inside", None),
        ("ok.txt", "0" * 63),
        ("ok.txt", "A" * 64),
        ("ok.txt", "0" * 64 + ".dir"),
        ("ok.txt", "0" * 64 + "\n" + "1" * 64),
    ],
)
def test_manifest_validation_names_the_bad_entry(path: str, oid: str | None) -> None:
    from mlops.errors import CacheError
    from mlops.storage.manifest import Entry, Manifest, validate_manifest

    good = [Entry(f"dir/f{i}.txt", f"{i:064x}", i) for i in range(50)]
    bad = Entry(path, oid or "f" * 64, 1)
    validate_manifest(Manifest(tuple(good)), "x.dir")
    with pytest.raises(CacheError, match="invalid entry") as caught:
        validate_manifest(Manifest((*good[:20], bad, *good[20:])), "x.dir")
    assert repr(path) in str(caught.value)


def test_add_of_a_big_file_hashes_it_early_and_correctly(repo: Path) -> None:
    big = repo / "big.bin"
    big.write_bytes(os.urandom(9 << 20))  # above the size hashed in the background
    result = run_subprocess(repo, "-q", "add", "--jobs", "2", "big.bin")
    assert result.returncode == 0, result.stderr
    assert pointer(repo, "big.bin")["hash"] == blake3(big.read_bytes()).hexdigest()


def test_an_early_hash_is_not_used_for_a_file_changed_since() -> None:
    import tempfile

    from mlops.storage.hashing import hash_early, hash_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        path.write_bytes(b"a" * (9 << 20))
        hash_early([str(path), "--jobs", "not-a-file"])
        with open(path, "r+b") as handle:  # same inode, same size, new bytes and mtime
            handle.write(b"b")
        os.utime(path, ns=(0, 0))
        assert hash_file(path) == blake3(path.read_bytes()).hexdigest()


def test_an_early_hash_does_not_hold_up_the_exit(tmp_path: Path) -> None:
    """A command failing on its input ends at once, not after hashing a big file."""
    import subprocess
    import sys

    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * (9 << 20))
    code = (
        "import sys, threading\nfrom mlops.storage.hashing import hash_early, hash_file\n"
        "hash_early([sys.argv[1]])\n"
        "hashing = [t for t in threading.enumerate() if t.name == 'mlops-hash']\n"
        "print(len(hashing), all(t.daemon for t in hashing))\n"
        "print(hash_file(sys.argv[1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    started, digest = out.stdout.splitlines()
    assert started in ("1 True", "0 True")  # "0": it had already finished
    assert digest == blake3(big.read_bytes()).hexdigest()


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_status_scan_lists_the_lines_add_recorded(tmp_path: Path, jobs: int) -> None:
    """``scan_lines`` (status, in worker processes) is ``stat_lines(scan_folder)`` (add)
    line for line: equal stats then give an equal fingerprint."""
    from mlops.errors import InputError
    from mlops.workspace.tracked import scan_folder, scan_lines, stat_lines

    folder = tmp_path / "data"
    for rel in ["top.txt", "a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "d/4.txt", "e/f/5.txt", "z.txt"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(rel)
    (folder / "g").mkdir()  # an empty folder
    (folder / "d" / "link.txt").symlink_to(folder / "top.txt")
    (folder / "a" / "b" / "2.txt").chmod(0o755)
    os.link(folder / "e" / "f" / "5.txt", tmp_path / "second-name")
    expected = stat_lines(scan_folder(folder))
    assert len(expected) == 8
    scan = scan_lines(folder, jobs, links=True)
    assert scan.lines == expected
    # the executable bit is in the line: a chmod changes no mtime
    assert [line.split("\0")[0] for line in scan.lines if line.endswith("\0x")] == ["a/b/2.txt"]
    # top.txt is reached through d/link.txt too, but a symlink is no second link
    assert scan.single_link == {p.split("\0")[0] for p in expected} - {"e/f/5.txt"}
    assert scan_lines(folder, jobs).single_link == set()
    (folder / "e" / "broken").symlink_to(folder / "nowhere")
    with pytest.raises(InputError, match="broken symbolic link"):
        scan_lines(folder, jobs)


def test_status_of_a_big_folder_scans_in_worker_processes(repo: Path) -> None:
    """Past SHARE_MIN_FILES files, status scans in processes; it still sees every change."""
    from mlops.storage.cache import SHARE_MIN_FILES

    for i in range(SHARE_MIN_FILES + 10):
        path = repo / "big" / f"{i % 7}" / f"{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(i))
    assert run_cli(repo, "add", "big").exit_code == 0
    clean = run_cli(repo, "status", "--json", "--exit-code")
    assert clean.exit_code == 0, clean.output
    (repo / "big" / "3" / "3.txt").chmod(0o644)
    (repo / "big" / "3" / "3.txt").write_text("changed")
    (repo / "big" / "6" / "new.txt").write_text("new")
    result = run_cli(repo, "status", "--json", "--exit-code")
    assert result.exit_code == 1
    row = json.loads(result.stdout)["data"][0]
    assert (row["modified"], row["added"]) == (["3/3.txt"], ["6/new.txt"])
