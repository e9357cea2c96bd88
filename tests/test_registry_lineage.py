"""Lineage from a real pipeline run: model -> train stage -> prepared data -> raw data, the
reverse (--used-by), and registration that finds its run by itself."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import as_json, run_cli
from tests.helpers.repos import commit_all, init_git

PREPARE = """\
import csv
rows = list(csv.reader(open("data/raw.csv")))
with open("data/prepared.csv", "w", newline="") as out:
    csv.writer(out).writerows([rows[0]] + sorted(rows[1:]))
"""
TRAIN = """\
import joblib, numpy, yaml
from sklearn.linear_model import LogisticRegression
c = yaml.safe_load(open("params.yaml"))["train"]["C"]
data = numpy.loadtxt("data/prepared.csv", delimiter=",", skiprows=1)
joblib.dump(LogisticRegression(C=c, max_iter=500).fit(data[:, :4], data[:, 4]), "model.joblib")
"""
EVALUATE = """\
import joblib, json, numpy
data = numpy.loadtxt("data/prepared.csv", delimiter=",", skiprows=1)
score = joblib.load("model.joblib").score(data[:, :4], data[:, 4])
json.dump({"accuracy": score}, open("metrics.json", "w"))
"""
PIPELINE = """\
stages:
  prepare:
    cmd: {python} prepare.py
    deps: [prepare.py, data/raw.csv]
    outs: [data/prepared.csv]
  train:
    cmd: {python} train.py
    deps: [train.py, data/prepared.csv]
    params: [train.C]
    outs: [model.joblib]
  evaluate:
    cmd: {python} evaluate.py
    deps: [evaluate.py, model.joblib, data/prepared.csv]
    metrics: [metrics.json]
"""


def write_raw(root: Path, rows: int) -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    lines = ["a,b,c,d,label"] + [
        ",".join(f"{v:.1f}" for v in x[i]) + f",{y[i]}" for i in range(0, 150, 150 // rows)
    ]
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "raw.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose pipeline ran once, and whose model is registered as iris:1."""
    root = init_git(tmp_path_factory.mktemp("lineage") / "p")
    assert run_cli(root, "init").exit_code == 0
    for name, text in (("prepare.py", PREPARE), ("train.py", TRAIN), ("evaluate.py", EVALUATE)):
        (root / name).write_text(text)
    (root / "params.yaml").write_text("train:\n  C: 0.5\n")
    (root / "mlops.yaml").write_text(PIPELINE.format(python=sys.executable))
    write_raw(root, 150)
    assert run_cli(root, "add", "data/raw.csv").exit_code == 0
    commit_all(root, "project", allow_empty=True)
    result = run_cli(root, "run")
    assert result.exit_code == 0, result.stderr
    commit_all(root, "trained", allow_empty=True)
    result = run_cli(root, "model", "register", "iris", "model.joblib")
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "p", symlinks=True))


def test_registration_found_the_run_with_metrics_of_the_evaluation(project: Path) -> None:
    version = as_json(project, "model", "show", "iris:1")
    run = version["run"]
    assert isinstance(run, dict) and run["stage"] == "train" and run["status"] == "success"
    assert run["record"]  # the run record object, which travels with push/pull
    assert version["params"] == {"params.yaml": {"train.C": 0.5}}
    assert set(version["data"]) == {"train.py", "data/prepared.csv"}  # type: ignore[arg-type]
    accuracy = version["metrics"]["metrics.json"]["accuracy"]  # type: ignore[index]
    assert 0.9 < accuracy <= 1.0


def test_lineage_of_a_model_reaches_the_raw_data(project: Path) -> None:
    tree = as_json(project, "lineage", "iris:1")
    assert (tree["kind"], tree["name"], tree["stage"]) == ("model", "iris:1", "train")
    inputs = {n["name"]: n for n in tree["inputs"]}  # type: ignore[attr-defined]
    assert inputs["train.py"]["kind"] == "git"
    prepared = inputs["data/prepared.csv"]
    assert (prepared["kind"], prepared["stage"], prepared["run"]) == (
        "output",
        "prepare",
        tree["run"],
    )
    upstream = {n["name"]: n for n in prepared["inputs"]}
    assert upstream["data/raw.csv"]["kind"] == "data"
    assert upstream["data/raw.csv"]["source"] == "pointer file data/raw.csv.mlops"
    text = run_cli(project, "lineage", "iris:1").stdout
    assert "<- data/prepared.csv" in text and "params: params.yaml:train.C=0.5" in text
    # A tracked output path has lineage too.
    assert as_json(project, "lineage", "data/prepared.csv")["stage"] == "prepare"


def test_lineage_works_from_the_record_objects_without_runs_db(project: Path) -> None:
    for db in (project / ".mlops").glob("runs.db*"):
        db.unlink()
    tree = as_json(project, "lineage", "iris:1")
    prepared = next(n for n in tree["inputs"] if n["name"] == "data/prepared.csv")  # type: ignore[attr-defined]
    assert prepared["kind"] == "output" and prepared["source"].startswith("run record")


def test_used_by_finds_the_versions_trained_on_a_data_version(project: Path) -> None:
    used = as_json(project, "lineage", "data/raw.csv", "--used-by")
    assert [(u["model"], u["version"], u["direct"]) for u in used["used_by"]] == [  # type: ignore[attr-defined]
        ("iris", "1", False)
    ]
    direct = as_json(project, "lineage", "data/prepared.csv", "--used-by")
    assert [u["direct"] for u in direct["used_by"]] == [True]  # type: ignore[attr-defined]
    # New raw data, a new run and a new version: only it was trained on the new data.
    write_raw(project, 75)
    assert run_cli(project, "add", "data/raw.csv").exit_code == 0
    assert run_cli(project, "run").exit_code == 0
    assert run_cli(project, "model", "register", "iris", "model.joblib").exit_code == 0
    used = as_json(project, "lineage", "data/raw.csv", "--used-by")
    assert [u["version"] for u in used["used_by"]] == ["2"]  # type: ignore[attr-defined]


def test_lineage_bad_targets(project: Path) -> None:
    for args, message in (
        (("lineage", "nothing.csv"), "nothing.csv: not tracked by mlops"),
        (("lineage", "wine:1"), "no model named 'wine'"),
        (("lineage", "iris:1", "--used-by"), "--used-by takes a data path"),
        (("lineage", "iris:5"), "model 'iris' has no version 5"),
    ):
        result = run_cli(project, *args)
        assert result.exit_code == 1, result.stdout
        assert message in result.stderr
