"""The experiments table: `mlops runs table` and `mlops runs list --params --metrics`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo
from mlops.pipeline.runs import RunRecord, StageRecord, open_runs
from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import run_ok, three_stage_project
from tests.helpers.repos import commit_all, git


def table(repo: Path, *args: str) -> dict[str, Any]:
    result = run_cli(repo, "runs", "table", "--json", *args)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_table_of_real_runs_has_params_and_metrics_as_columns(repo: Path) -> None:
    three_stage_project(repo)
    first = commit_all(repo, "lr 0.1")
    run_ok(repo)
    write(repo, "params.yaml", "train:\n  lr: 0.25\n  epochs: 3\n")
    second = commit_all(repo, "lr 0.25")
    run_ok(repo)

    data = table(repo)
    assert data["params"] == ["params.yaml:train.lr"]
    assert data["metrics"] == ["metrics.json:accuracy", "metrics.json:rows"]
    new, old = data["rows"]
    assert (new["commit"], old["commit"]) == (second, first)
    assert new["params"] == {"params.yaml:train.lr": 0.25}
    assert new["metrics"] == {"metrics.json:accuracy": 0.75, "metrics.json:rows": 3}
    assert old["metrics"]["metrics.json:accuracy"] == 0.6
    assert new["executed"] == ["train", "evaluate"]  # prepare was unchanged
    assert old["executed"] == ["prepare", "train", "evaluate"]

    # Sorted, only what changed, and as CSV, Markdown and a terminal table.
    by_accuracy = table(repo, "--sort-by", "accuracy", "--sort-order", "desc", "--only-changed")
    assert [r["id"] for r in by_accuracy["rows"]] == [new["id"], old["id"]]
    assert by_accuracy["metrics"] == ["metrics.json:accuracy"]  # rows is 3 in both
    ascending = table(repo, "--sort-by", "params.yaml:train.lr")
    assert [r["id"] for r in ascending["rows"]] == [old["id"], new["id"]]

    out = run_cli(repo, "runs", "table", "--csv", "--sort-by", "lr")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["id", "started", "status", "commit", "train.lr", "accuracy", "rows"]
    assert [(r[0], r[4], r[5]) for r in rows[1:]] == [
        (old["id"], "0.1", "0.6"),
        (new["id"], "0.25", "0.75"),
    ]
    assert rows[1][3] == first[:8]

    md = run_cli(repo, "runs", "table", "--md").stdout.splitlines()
    assert md[0] == "| id | started | status | commit | train.lr | accuracy | rows |"
    assert md[1] == "|---|---|---|---|---|---|---|"
    assert md[2].startswith(f"| {new['id']} |") and "| 0.75 | 3 |" in md[2]

    shown = run_cli(repo, "runs", "table")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["id", "started", "status", "commit", "train.lr", "accuracy", "rows"]
    assert lines[1].split()[0] == new["id"] and "0.75" in lines[1].split()

    # runs list --params / --metrics is the same table with those columns.
    listed = run_cli(repo, "runs", "list", "--metrics", "--csv")
    assert listed.exit_code == 0, listed.stderr
    assert next(csv.reader(io.StringIO(listed.stdout)))[4:] == ["accuracy", "rows"]
    listed = run_cli(repo, "runs", "list", "--params", "--json")
    assert json.loads(listed.stdout)["metrics"] == []
    assert json.loads(listed.stdout)["params"] == ["params.yaml:train.lr"]


def _record(
    run_id: str,
    started: float,
    commit: str | None,
    status: str = "success",
    lr: float | None = 0.1,
    accuracy: Any = 0.5,
    dirty: bool = False,
    stages: tuple[tuple[str, str], ...] = (("train", "ran"), ("evaluate", "ran")),
) -> RunRecord:
    made = []
    for name, stage_status in stages:
        params = {"params.yaml": {"lr": lr}} if name == "train" and lr is not None else {}
        metrics = {"metrics.json": {"acc": accuracy}} if name == "evaluate" else {}
        made.append(StageRecord(name, stage_status, params=params, metrics=metrics))
    return RunRecord(
        run_id, started, started + 2.0, status, "u", "h", commit, dirty, ("mlops", "run"),
        "3.11", {}, tuple(made),
    )  # fmt: skip


def _save(repo: Path, *records: RunRecord) -> None:
    db = open_runs(Repo(repo))
    try:
        for record in records:
            db.save(record, [])
    finally:
        db.close()


def test_filters_per_commit_and_all_commits(repo: Path) -> None:
    write(repo, "a.txt", "a\n")
    main = commit_all(repo, "main")
    git(repo, "checkout", "-q", "-b", "other")
    write(repo, "b.txt", "b\n")
    other = commit_all(repo, "other")
    git(repo, "checkout", "-q", "main")
    _save(
        repo,
        _record("r1", 100.0, main, lr=0.1, accuracy=0.5),
        _record("r2", 200.0, main, lr=0.2, accuracy=0.7),
        _record("r3", 300.0, main, status="failed", lr=0.3, accuracy=None,
                stages=(("train", "failed"), ("evaluate", "blocked"))),
        _record("r4", 400.0, other, lr=0.4, accuracy=0.9),
        _record("r5", 500.0, main, lr=0.5, accuracy=[1, 2], dirty=True,
                stages=(("train", "skipped"), ("evaluate", "ran"))),
        _record("r6", 600.0, None, lr=None, stages=()),
    )  # fmt: skip

    ids = lambda data: [r["id"] for r in data["rows"]]  # noqa: E731
    # Default: runs on HEAD's history (and before any commit); other's run is hidden.
    assert ids(table(repo)) == ["r6", "r5", "r3", "r2", "r1"]
    assert ids(table(repo, "--all-commits")) == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert ids(table(repo, "--status", "failed")) == ["r3"]
    assert ids(table(repo, "-s", "success", "-s", "interrupted")) == ["r6", "r5", "r2", "r1"]
    # --stage: runs in which the stage's command was started (failed counts, skipped not).
    assert ids(table(repo, "--stage", "train")) == ["r3", "r2", "r1"]
    assert ids(table(repo, "--stage", "evaluate", "--stage", "nope")) == ["r5", "r2", "r1"]

    per_commit = table(repo, "--per-commit", "-A")
    assert [(r["id"], r["runs"], r["dirty"]) for r in per_commit["rows"]] == [
        ("r6", 1, False),
        ("r5", 1, True),
        ("r4", 1, False),
        ("r3", 3, False),
    ]
    assert per_commit["per_commit"] is True
    out = run_cli(repo, "runs", "table", "--per-commit", "--csv").stdout
    assert next(csv.reader(io.StringIO(out)))[:5] == ["id", "started", "status", "commit", "runs"]

    # Sorting: numbers in order, a list after numbers, rows without a value last.
    by_acc = table(repo, "--sort-by", "acc", "-A")
    assert ids(by_acc) == ["r1", "r2", "r4", "r5", "r6", "r3"]
    assert ids(table(repo, "--sort-by", "acc", "-A", "--sort-order", "desc"))[:3] == [
        "r5",
        "r4",
        "r2",
    ]
    assert ids(table(repo, "--sort-by", "started", "--limit", "2")) == ["r1", "r2"]
    # --only-changed compares the rows shown: one row has nothing that changes.
    one = table(repo, "--only-changed", "--limit", "1", "--sort-by", "lr")
    assert (ids(one), one["params"], one["metrics"]) == (["r1"], [], [])
    csv_rows = list(csv.reader(io.StringIO(run_cli(repo, "runs", "table", "--csv").stdout)))
    assert csv_rows[2][-1] == "[1, 2]"  # r5's list as JSON
    assert csv_rows[1][-2:] == ["", ""]  # r6 has no values

    # Columns shared by two files are named in full; others by key alone.
    _save(repo, _record("r7", 700.0, main, stages=(("evaluate", "ran"),)))
    db = open_runs(Repo(repo))
    try:
        db.save(
            RunRecord(
                "r8", 800.0, 801.0, "success", "u", "h", main, False, (), "", {},
                (StageRecord("score", "ran", metrics={"other.json": {"acc": 1.0}}),),
            ),
            [],
        )  # fmt: skip
    finally:
        db.close()
    header = next(csv.reader(io.StringIO(run_cli(repo, "runs", "table", "--csv").stdout)))
    assert header[4:] == ["lr", "metrics.json:acc", "other.json:acc"]
    ambiguous = run_cli(repo, "runs", "table", "--sort-by", "acc")
    assert ambiguous.exit_code == 1
    assert "'acc' is ambiguous: metrics.json:acc, other.json:acc" in ambiguous.stderr


def test_bad_options_and_an_empty_history(repo: Path) -> None:
    assert table(repo) == {"per_commit": False, "params": [], "metrics": [], "rows": []}
    assert "No runs recorded" in run_cli(repo, "runs", "table").stdout
    assert run_cli(repo, "runs", "table", "--md").stdout.splitlines() == [
        "| id | started | status | commit |",
        "|---|---|---|---|",
    ]
    _save(repo, _record("r1", 100.0, None))
    unknown = run_cli(repo, "runs", "table", "--sort-by", "nope")
    assert unknown.exit_code == 1
    assert "--sort-by 'nope' is not a column; columns: id, started" in unknown.stderr
    assert run_cli(repo, "runs", "table", "--status", "done").exit_code == 2
    assert run_cli(repo, "runs", "table", "--sort-order", "up").exit_code == 2
    assert run_cli(repo, "runs", "table", "--csv", "--md").exit_code == 2
    assert run_cli(repo, "runs", "list", "--sort-by", "lr").exit_code == 2


def test_markdown_escapes_pipes(repo: Path) -> None:
    _save(repo, _record("r1", 100.0, None, accuracy="a|b"))
    md = run_cli(repo, "runs", "table", "--md").stdout.splitlines()
    assert md[2].endswith("| a\\|b |")
