"""Run records (runs.db and objects), runs list/show/diff, params and metrics across commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.core.repo import Repo
from mlops.pipeline.runs import RunRecord, get_run, package_versions
from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.files import write
from tests.helpers.pipeline import read_lock, run_ok, runs_json, three_stage_project
from tests.helpers.repos import commit_all, git


def test_a_run_is_recorded_in_the_database_and_as_an_object(repo: Path) -> None:
    three_stage_project(repo)
    commit_all(repo, "start")
    head = git(repo, "rev-parse", "HEAD").strip()
    run_ok(repo)
    run = runs_json(repo)[0]
    assert run["status"] == "success"
    assert run["commit"] == head and run["dirty"] is False  # outputs are ignored by Git
    assert run["argv"][:2] == ["mlops", "run"]
    assert run["user"] and run["host"] and run["python"].startswith("3.")
    assert "mlops" in run["packages"]
    train = next(s for s in run["stages"] if s["name"] == "train")
    assert train["status"] == "ran" and train["exit_code"] == 0
    assert train["cmd"] == ["cat data/clean.txt params.yaml > model.bin && echo trained"]
    assert train["params"] == {"params.yaml": {"train.lr": 0.1}}
    lock = read_lock(repo)
    assert train["deps"] == {"data/clean.txt": lock["stages"]["train"]["deps"][0]["hash"]}
    assert train["outs"] == {"model.bin": lock["stages"]["train"]["outs"][0]["hash"]}
    evaluate = next(s for s in run["stages"] if s["name"] == "evaluate")
    assert evaluate["metrics"] == {"metrics.json": {"accuracy": 0.6, "rows": 3}}
    assert evaluate["checks"] is None  # filled by the checks integration when it runs

    # The record object is the canonical JSON of the record, and the lock names it.
    oid = run["object"]
    assert lock["stages"]["train"]["record"] == oid
    stored = json.loads((repo / ".mlops/cache" / oid[:2] / oid[2:]).read_bytes())
    assert RunRecord.from_dict(stored, oid) == get_run(Repo(repo), run["id"])

    write(repo, "raw.txt", "dirty\n")
    git(repo, "add", "raw.txt")
    run_ok(repo)
    assert runs_json(repo)[0]["dirty"] is True


def test_runs_list_show_and_diff(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo)
    write(repo, "params.yaml", "train:\n  lr: 0.25\n  epochs: 3\n")
    run_ok(repo)
    new, old = (r["id"] for r in runs_json(repo)[:2])

    listing = run_cli(repo, "runs", "list").stdout.splitlines()
    assert listing[0].split()[:3] == ["ID", "STARTED", "STATUS"]
    assert listing[1].startswith(new) and listing[2].startswith(old)

    shown = run_cli(repo, "runs", "show", new[:4])
    assert shown.exit_code == 0, shown.stderr
    assert f"run {new}: success" in shown.stdout
    assert "train: ran" in shown.stdout and "prepare: skipped" in shown.stdout
    assert json.loads(run_cli(repo, "runs", "show", new, "--json").stdout)["id"] == new

    diff = run_cli(repo, "runs", "diff", old, new)
    assert diff.exit_code == 0, diff.stderr
    rows = [line.split() for line in diff.stdout.splitlines()]
    assert ["param", "params.yaml:train.lr", "0.1", "0.25"] in rows
    assert ["metric", "metrics.json:accuracy", "0.6", "0.75"] in rows
    assert any(r[:2] == ["data", "model.bin"] for r in rows)
    assert not any(r[:2] == ["data", "raw.txt"] for r in rows)  # unchanged rows hidden
    data = json.loads(run_cli(repo, "runs", "diff", old, new, "--all", "--json").stdout)
    assert {"kind": "data", "name": "raw.txt"}.items() <= next(
        r for r in data["rows"] if r["name"] == "raw.txt"
    ).items()


def test_unknown_and_ambiguous_run_ids(repo: Path) -> None:
    result = run_cli(repo, "runs", "show", "abc")
    assert result.exit_code == 1
    assert "mlops: error: no run with id 'abc' (see `mlops runs list`)" in result.stderr
    three_stage_project(repo)
    for _ in range(17):  # 17 ids over 16 hex digits: two share their first digit
        run_ok(repo)
    ids = [r["id"] for r in runs_json(repo)]
    first = [i[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)
    result = run_cli(repo, "runs", "show", shared)
    assert result.exit_code == 1
    assert f"run id '{shared}' is ambiguous" in result.stderr
    assert run_cli(repo, "runs", "list").stdout.count("\n") == 18
    assert run_cli(repo, "runs", "list", "-n", "3").stdout.count("\n") == 4


def test_params_and_metrics_across_commits(repo: Path) -> None:
    three_stage_project(repo, lr=0.1)
    run_ok(repo)
    first = commit_all(repo, "lr 0.1")
    write(repo, "params.yaml", "train:\n  lr: 0.3\n  epochs: 3\n")

    # Workspace against HEAD, before running.
    result = run_cli(repo, "params", "diff")
    assert result.stdout.splitlines()[1].split() == ["params.yaml", "train.lr", "0.1", "0.3"]
    run_ok(repo)
    result = run_cli(repo, "metrics", "diff", "--json")
    assert json.loads(result.stdout) == [
        {
            "file": "metrics.json",
            "key": "accuracy",
            "old": 0.6,
            "new": 0.8,
            "change": pytest.approx(0.2),
        },
    ]
    second = commit_all(repo, "lr 0.3")

    # Two commits, read from Git objects while the workspace holds something else.
    write(repo, "params.yaml", "train:\n  lr: 0.9\n  epochs: 3\n")
    result = run_cli(repo, "params", "diff", first, second, "--json")
    assert json.loads(result.stdout) == [
        {
            "file": "params.yaml",
            "key": "train.lr",
            "old": 0.1,
            "new": 0.3,
            "change": pytest.approx(0.2),
        },
    ]
    table = run_cli(repo, "metrics", "diff", first, second).stdout.splitlines()
    assert table[0].split() == ["FILE", "KEY", "OLD", "NEW", "CHANGE"]
    assert table[1].split() == ["metrics.json", "accuracy", "0.6", "0.8", "+0.2"]
    assert run_cli(repo, "metrics", "diff", first, second, "--all").stdout.count("rows") == 1

    shown = json.loads(run_cli(repo, "metrics", "show", "--all-commits", "--json").stdout)
    by_rev = {m["rev"]: m["metrics"]["metrics.json"]["accuracy"] for m in shown}
    assert by_rev == {"workspace": 0.8, second: 0.8, first: 0.6}
    assert "workspace  metrics.json  accuracy  0.8" in run_cli(repo, "metrics", "show").stdout
    assert git(repo, "status", "--porcelain").strip() == "M params.yaml"


def test_params_diff_without_a_pipeline_and_before_any_commit(repo: Path) -> None:
    write(repo, "params.yaml", "seed: 1\nmodel: {depth: 2}\n")
    result = run_cli(repo, "params", "diff", "--json")
    assert json.loads(result.stdout) == [
        {"file": "params.yaml", "key": "model.depth", "old": None, "new": 2, "change": None},
        {"file": "params.yaml", "key": "seed", "old": None, "new": 1, "change": None},
    ]
    assert run_cli(repo, "metrics", "show").stdout.startswith("No metrics")
    result = run_cli(repo, "metrics", "diff", "nope")
    assert result.exit_code == 1 and "unknown Git revision 'nope'" in result.stderr


def test_history_commands_as_a_subprocess(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo)
    commit_all(repo, "first")
    proc = run_subprocess(repo, "metrics", "show", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["metrics"]["metrics.json"]["rows"] == 3


def test_package_versions_come_from_dist_info_names() -> None:
    import importlib.metadata

    found = package_versions(("mlops", "PyYAML", "no-such-package-xyz"))
    assert found["mlops"] == importlib.metadata.version("mlops")
    assert found["PyYAML"] == importlib.metadata.version("PyYAML")
    assert "no-such-package-xyz" not in found


def _metrics_project(repo: Path, accuracy: float) -> None:
    write(
        repo,
        "mlops.yaml",
        "stages:\n  evaluate:\n    cmd: echo scored\n    metrics: [metrics.json]\n",
    )
    write(repo, "metrics.json", f'{{"accuracy": {accuracy}}}\n')


def test_metrics_show_all_commits_is_branches_tags_and_head_only(repo: Path) -> None:
    _metrics_project(repo, 0.5)
    first = commit_all(repo, "first")
    git(repo, "tag", "v1")
    write(repo, "metrics.json", '{"accuracy": 0.7}\n')
    # An experiment ref and a stash: not branches or tags, so not listed.
    git(repo, "stash", "-q")
    stash = git(repo, "rev-parse", "refs/stash").strip()
    git(repo, "update-ref", "refs/exps/ab/cdef/exp-1", stash)
    shown = json.loads(run_cli(repo, "metrics", "show", "--all-commits", "--json").stdout)
    assert [m["rev"] for m in shown] == ["workspace", first]


def test_metrics_diff_says_why_an_ignored_metrics_file_is_missing(repo: Path) -> None:
    _metrics_project(repo, 0.5)
    write(repo, ".gitignore", "/metrics.json\n")
    commit_all(repo, "metrics ignored by mistake")
    result = run_cli(repo, "metrics", "diff")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["metrics.json", "accuracy", "-", "0.5", "-"]
    assert "note: metrics.json is not in commit " in result.stderr
    assert "Git ignores it (.gitignore:1: /metrics.json)" in result.stderr
    (repo / "metrics.json").unlink()
    result = run_cli(repo, "metrics", "diff")
    assert "metrics.json is not in the workspace: run the pipeline" in result.stderr
