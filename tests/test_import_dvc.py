"""`mlops import-dvc` on repositories made and run by a real DVC."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.dvc import PARAMS, dvc, dvc_stage_edges, get_started, needs_dvc
from tests.helpers.files import write
from tests.helpers.repos import git, init_git

pytestmark = needs_dvc

SECRET = "s3cr3t-value-for-the-test"


def _import(repo: Path, *args: str) -> dict[str, Any]:
    result = run_cli(repo, "import-dvc", "--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _dvc_files(repo: Path) -> dict[str, tuple[bytes, int]]:
    """DVC's own files and cache objects: bytes and mode, to see that nothing changed."""
    found = {}
    for path in [
        repo / "dvc.yaml",
        repo / "dvc.lock",
        *(p for p in repo.glob("**/*.dvc") if p.is_file()),
        *(p for p in (repo / ".dvc").rglob("*") if p.is_file() and "tmp" not in p.parts),
    ]:
        found[str(path.relative_to(repo))] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found


def _ran(output: str) -> list[str]:
    import re

    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The get-started project after `dvc repro`, made once for this module (copied by tests)."""
    return get_started(tmp_path_factory.mktemp("dvc") / "get-started")


def _copy(started: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(started, repo, symlinks=True)
    return repo


def test_import_of_the_get_started_project(started: Path, tmp_path: Path) -> None:
    repo = _copy(started, tmp_path)
    # What `dvc remote add -d storage ../dvc-storage`, `dvc remote add cloud s3://...` and
    # `dvc remote modify [--local] cloud ...` write (a DVC call takes seconds).
    (repo / ".dvc/config").write_text(
        "[core]\n    remote = storage\n"
        "['remote \"storage\"']\n    url = ../../dvc-storage\n"
        "['remote \"cloud\"']\n    url = s3://bucket/project\n"
        "    endpointurl = http://127.0.0.1:9\n    region = eu-west-1\n"
    )
    (repo / ".dvc/config.local").write_text(
        f"['remote \"cloud\"']\n    access_key_id = AKIDTEST\n    secret_access_key = {SECRET}\n"
    )
    assert "cloud" in dvc(repo, "remote", "list")
    assert json.loads(dvc(repo, "status", "--json")) == {}
    before = _dvc_files(repo)

    plan = run_cli(repo, "import-dvc", "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert "would import 3 stage(s), 3 with their dvc.lock state" in plan.stdout
    assert "  stages: prepare, train, evaluate\n" in plan.stdout
    assert "  pointers: data/data.csv.mlops\n" in plan.stdout
    assert not (repo / ".mlops").exists() and not (repo / "mlops.yaml").exists()

    report = _import(repo)
    assert report["stages"] == ["prepare", "train", "evaluate"]
    assert report["locked"] == ["prepare", "train", "evaluate"]
    assert report["pointers"] == ["data/data.csv.mlops"]
    assert report["missing"] == []
    not_imported = {(n["where"], n["what"]) for n in report["not_imported"]}
    assert not_imported == {(".dvc/config:8", "option 'region' of remote cloud")}
    assert SECRET not in json.dumps(report)

    # DVC's files are as they were, and DVC still sees nothing to do.
    assert _dvc_files(repo) == before
    assert json.loads(dvc(repo, "status", "--json")) == {}

    # The same stage graph.
    graph = json.loads(run_cli(repo, "dag", "--json").stdout)
    assert graph["stages"] == ["prepare", "train", "evaluate"]
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert (
        edges
        == dvc_stage_edges(repo)
        == {
            ("prepare", "train"),
            ("prepare", "evaluate"),
            ("train", "evaluate"),
        }
    )

    # The same bytes: every object is DVC's content (its MD5) under its BLAKE3 id.
    pointer = (repo / "data/data.csv.mlops").read_text()
    data = (repo / "data/data.csv").read_bytes()
    assert f"hash: {blake3(data).hexdigest()}" in pointer
    lock = json.loads((repo / "mlops.lock").read_text())
    dvc_lock = __import__("yaml").safe_load((repo / "dvc.lock").read_text())
    cache = repo / ".mlops/cache"
    for name, entry in lock["stages"].items():
        dvc_outs = {o["path"]: o["md5"] for o in dvc_lock["stages"][name]["outs"]}
        assert {o["path"] for o in entry["outs"]} == set(dvc_outs)
        for out in entry["outs"]:
            if out["hash"].endswith(".dir"):
                files = json.loads((cache / out["hash"][:2] / out["hash"][2:]).read_bytes())
                listing = {
                    row["relpath"]: row["md5"]
                    for row in json.loads(
                        (repo / ".dvc/cache/files/md5" / dvc_outs[out["path"]][:2]
                         / dvc_outs[out["path"]][2:]).read_bytes()
                    )
                }  # fmt: skip
                for path, oid, _, _ in files["files"]:
                    body = (cache / oid[:2] / oid[2:]).read_bytes()
                    assert hashlib.md5(body).hexdigest() == listing[path]
                    assert blake3(body).hexdigest() == oid
            elif out["path"] == "model.json":  # cached: its object is in mlops's cache
                body = (cache / out["hash"][:2] / out["hash"][2:]).read_bytes()
                assert hashlib.md5(body).hexdigest() == dvc_outs["model.json"]
                assert blake3(body).hexdigest() == out["hash"]
            else:  # metrics and plots stay in Git: their hash is the workspace file's
                body = (repo / out["path"]).read_bytes()
                assert blake3(body).hexdigest() == out["hash"]
    assert lock["stages"]["train"]["params"] == {
        "params.yaml": {"train.lr": 0.1, "train.epochs": 3}
    }

    # Remotes: the folder is relative to the root now; secrets only in the local file.
    config = (repo / ".mlops/config.yaml").read_text()
    remotes = json.loads(run_cli(repo, "remote", "list", "--json").stdout)
    by_name = {r["name"]: r for r in remotes}
    assert by_name["storage"]["default"] is True
    assert os.path.normpath(repo / by_name["storage"]["url"]) == str(tmp_path / "dvc-storage")
    assert by_name["cloud"]["endpoint_url"] == "http://127.0.0.1:9"
    assert by_name["cloud"]["secret"] == "***"
    assert SECRET not in config
    local = repo / ".mlops/config.local.yaml"
    assert SECRET in local.read_text() and "AKIDTEST" in local.read_text()
    assert stat.S_IMODE(local.stat().st_mode) == 0o600

    # Nothing is stale for mlops either, and a run does nothing.
    status = run_cli(repo, "status", "--json")
    assert status.exit_code == 0, status.stderr
    state = json.loads(status.stdout)
    assert [s["stage"] for s in state["stages"] if s["stale"]] == []
    assert [d["workspace"] for d in state["data"]] == ["unchanged"]
    quiet = run_cli(repo, "run", "--json")
    assert quiet.exit_code == 0, quiet.stderr
    assert {s["stage"]: s["status"] for s in json.loads(quiet.stdout)["stages"]} == {
        "prepare": "skipped",
        "train": "skipped",
        "evaluate": "skipped",
    }

    # A param change: mlops runs the stages `dvc repro` runs, on a copy of the same state.
    write(repo, "params.yaml", PARAMS.replace("lr: 0.1", "lr: 0.3"))
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin, symlinks=True)
    dvc_ran = _ran(dvc(twin, "repro"))
    ran = run_cli(repo, "run", "--json")
    assert ran.exit_code == 0, ran.stderr
    mlops_ran = [s["stage"] for s in json.loads(ran.stdout)["stages"] if s["status"] == "ran"]
    assert mlops_ran == dvc_ran == ["train", "evaluate"]
    assert (repo / "model.json").read_bytes() == (twin / "model.json").read_bytes()

    # Importing again changes nothing.
    again = _import(repo, "--dry-run")
    assert again["dry_run"] is True
    assert run_cli(repo, "import-dvc").exit_code == 1  # the lock moved on: needs --force
    assert "mlops.lock already exist(s) with other content" in run_cli(repo, "import-dvc").stderr


def test_missing_cache_data_is_named_and_the_rest_imported(started: Path, tmp_path: Path) -> None:
    repo = _copy(started, tmp_path)
    dvc_lock = __import__("yaml").safe_load((repo / "dvc.lock").read_text())
    model = next(o for o in dvc_lock["stages"]["train"]["outs"] if o["path"] == "model.json")
    obj = repo / ".dvc/cache/files/md5" / model["md5"][:2] / model["md5"][2:]
    os.chmod(obj, 0o644)
    obj.unlink()
    # The workspace copy is gone too (a fresh clone without `dvc pull`, say).
    (repo / "model.json").unlink()
    # And one file of data/prepared is corrupt in DVC's cache.
    listing_md5 = next(
        o["md5"] for o in dvc_lock["stages"]["prepare"]["outs"] if o["path"] == "data/prepared"
    )
    listing = json.loads(
        (repo / ".dvc/cache/files/md5" / listing_md5[:2] / listing_md5[2:]).read_bytes()
    )
    bad = repo / ".dvc/cache/files/md5" / listing[0]["md5"][:2] / listing[0]["md5"][2:]
    os.chmod(bad, 0o644)
    bad.write_text("not the bytes DVC hashed\n")
    os.chmod(bad, 0o444)
    shutil.rmtree(repo / "data/prepared")

    result = run_cli(repo, "import-dvc")
    assert result.exit_code == 1
    assert "missing: model.json: " in result.stderr
    assert "missing: data/prepared: 1 of 2 files are not in DVC's cache" in result.stderr
    assert "mlops: error: 2 path(s) could not be imported" in result.stderr
    # The rest is imported: the data pointer, the pipeline and a lock.
    assert (repo / "data/data.csv.mlops").exists()
    assert (repo / "mlops.yaml").exists() and (repo / "mlops.lock").exists()
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    stale = {s["stage"] for s in status["stages"] if s["stale"]}
    assert stale == {"prepare", "train", "evaluate"}  # as `dvc status` says
    assert set(json.loads(dvc(repo, "status", "--json"))) >= {"prepare", "train"}


def test_a_stage_dvc_sees_changed_is_stale_after_the_import(started: Path, tmp_path: Path) -> None:
    repo = _copy(started, tmp_path)
    with open(repo / "src/train.py", "a") as handle:
        handle.write("# tuned\n")
    assert set(json.loads(dvc(repo, "status", "--json"))) == {"train"}
    report = _import(repo)  # a changed dep is not missing data
    assert report["missing"] == []
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    stale = {s["stage"]: s["reasons"] for s in status["stages"] if s["stale"]}
    assert stale["train"] == ["dep src/train.py changed"]
    assert set(stale) == {"train", "evaluate"}  # evaluate: its upstream is stale
    assert "prepare" not in stale


def test_what_mlops_lacks_is_listed_with_its_line(tmp_path: Path) -> None:
    repo = init_git(tmp_path / "repo")
    dvc(repo, "init", "-q")
    write(repo, "params.yaml", "lr: 0.1\nmodels: [a, b]\n")
    write(
        repo,
        "dvc.yaml",
        """\
        vars:
          - size: 3
            out: sub
            opts: {lr: 0.1, epochs: 2}
        stages:
          plain:
            cmd: echo plain > plain.txt
            outs:
            - plain.txt:
                remote: elsewhere
                desc: a note
            meta: {owner: me}
          uses_vars:
            cmd: echo ${size} > sized.txt
            outs: [sized.txt]
          unpacked:
            cmd: echo ${opts} > opts.txt
          grid:
            matrix:
              model: [a, b]
            cmd: echo ${key} > grid-${item.model}.txt
          deep:
            wdir: ${out}
            vars: [local.yaml]
            cmd: echo ${greeting}
          fixed:
            cmd: echo frozen > frozen.txt
            frozen: true
            outs: [frozen.txt]
          each:
            foreach: ${models}
            do:
              cmd: echo ${item} > each-${item}.txt
              deps:
              - s3://bucket/source.csv
              outs: ["each-${item}.txt"]
        metrics:
          - extra.json
        """,
    )
    write(repo, "sub/dvc.yaml", "stages:\n  inner:\n    cmd: echo inner\n")
    report = _import(repo, "--dry-run")
    assert report["stages"] == [
        "plain",
        "uses_vars",
        "grid@a",
        "grid@b",
        "fixed",
        "each@a",
        "each@b",
    ]
    notes = [f"{n['where']} {n['what']}: {n['why']}" for n in report["not_imported"]]
    assert notes == [
        "dvc.yaml:37 top-level metrics: mlops has no such section",
        "dvc.yaml:10 option 'remote' of plain.txt in stage plain: mlops has no such output option",
        "dvc.yaml:11 option 'desc' of plain.txt in stage plain: mlops has no such output option",
        "dvc.yaml:12 'meta' of stage plain: mlops has no such stage key",
        "dvc.yaml:16 stage unpacked: stage 'unpacked': ${opts} is a mapping, which cannot be"
        " written inside a string",
        "dvc.yaml:24 stage deep: DVC reads its vars files from its wdir, a ${...} mlops"
        " cannot name them under",
        "dvc.yaml:34 dep s3://bucket/source.csv of stage each: mlops tracks files in the"
        " repository only",
        "sub/dvc.yaml:1 the pipeline of a sub-folder: mlops has one mlops.yaml at the root",
    ]
    assert not (repo / ".mlops").exists()
    _import(repo)
    text = (repo / "mlops.yaml").read_text()
    assert "#   dvc.yaml:24: stage deep: DVC reads its vars files from its wdir" in text
    assert run_cli(repo, "run").exit_code == 0
    assert (repo / "each-a.txt").read_text() == "a\n"
    assert (repo / "sized.txt").read_text() == "3\n"
    assert (repo / "grid-b.txt").read_text() == "b\n"  # ${key}: the matrix name suffix
    assert not (repo / "frozen.txt").exists()  # frozen: never run by mlops


def test_bad_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    repo = init_git(tmp_path / "repo")
    missing = run_cli(repo, "import-dvc")
    assert missing.exit_code == 1
    assert "is not a DVC repository (no .dvc/ folder)" in missing.stderr
    dvc(repo, "init", "-q")
    write(repo, "dvc.yaml", "stages:\n  a:\n    cmd: [unclosed\n")
    bad = run_cli(repo, "import-dvc")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("mlops: error: dvc.yaml:") and "invalid YAML" in bad.stderr
    (repo / "dvc.yaml").unlink()
    write(repo, "escape.dvc", "outs:\n- md5: " + "a" * 32 + "\n  hash: md5\n  path: ../x\n")
    escape = run_cli(repo, "import-dvc")
    assert escape.exit_code == 1
    assert "mlops: error: escape.dvc:2: path '../x' is outside the repository" in escape.stderr
    write(repo, "escape.dvc", "outs:\n- md5: " + "a" * 32 + "\n  hash: md5\n  path: .git/x\n")
    assert "inside a folder mlops does not track" in run_cli(repo, "import-dvc").stderr
    (repo / "escape.dvc").unlink()
    write(repo, ".dvc/config", "[core]\n  remote = s\n['remote \"s\"'\n  url = /x\n")
    config = run_cli(repo, "import-dvc")
    assert config.exit_code == 1
    assert "mlops: error: .dvc/config:3: invalid section header" in config.stderr
    assert not (repo / "mlops.yaml").exists()


def test_an_existing_mlops_yaml_is_kept_without_force(started: Path, tmp_path: Path) -> None:
    repo = _copy(started, tmp_path)
    (repo / "mlops.yaml").write_text("stages: {}\n")
    refused = run_cli(repo, "import-dvc")
    assert refused.exit_code == 1
    assert "mlops.yaml already exist(s) with other content; run `mlops import-dvc --force`" in (
        refused.stderr
    )
    assert (repo / "mlops.yaml").read_text() == "stages: {}\n"
    assert not (repo / "mlops.lock").exists()
    assert _import(repo, "--force")["stages"] == ["prepare", "train", "evaluate"]


def test_import_as_a_subprocess_links_dvc_objects(started: Path, tmp_path: Path) -> None:
    repo = _copy(started, tmp_path)
    proc = run_subprocess(repo, "import-dvc")
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 stage(s), 3 with their dvc.lock state" in proc.stdout
    # The data file's object shares DVC's bytes (a link, no second copy) where it can.
    oid = next(
        line.split()[1]
        for line in (repo / "data/data.csv.mlops").read_text().splitlines()
        if line.startswith("hash:")
    )
    md5 = hashlib.md5((repo / "data/data.csv").read_bytes()).hexdigest()
    ours = (repo / ".mlops/cache" / oid[:2] / oid[2:]).stat()
    theirs = (repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).stat()
    assert ours.st_ino == theirs.st_ino or ours.st_size == theirs.st_size
    assert not ours.st_mode & 0o222
    assert subprocess.run(["git", "check-ignore", "-q", "data/data.csv"], cwd=repo).returncode == 0
    git(repo, "add", "-A")
    assert "mlops.lock" in git(repo, "status", "--porcelain")
