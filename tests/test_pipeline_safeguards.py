"""`mlops run` with stage checks (before / after) and `register:` of the trained model."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import CliResult, run_cli
from tests.helpers.repos import git

TRAIN = """
import joblib, pandas as pd
from pathlib import Path
from sklearn.linear_model import LogisticRegression
frame = pd.read_csv("data/train.csv")
Path("ran-train").write_text("yes")
model = LogisticRegression(max_iter=500).fit(frame[["x1", "x2"]], frame["label"])
Path("models").mkdir(exist_ok=True)
joblib.dump(model, "models/model.joblib")
"""

PIPELINE = """
stages:
  train:
    cmd: {python} train.py
    deps: [train.py, data/train.csv]
    outs: [models/model.joblib]
    checks:
      before: [clean_data]
      after: [good_model]
    register: {{name: demo, path: models/model.joblib, promote: staging}}
  report:
    cmd: {python} -c "open('report.txt', 'w').write('done')"
    deps: [models/model.joblib]
    outs: [report.txt]
checks:
  clean_data:
    data: data/train.csv
    expect:
      - not_null: [x1, x2, label]
      - allowed: {{label: [0, 1]}}
  good_model:
    model: models/model.joblib
    data: data/train.csv
    target: label
    features: [x1, x2]
    expect:
      - accuracy >= {floor}
models:
  demo:
    compare: {{accuracy: higher}}
"""


def write_project(repo: Path, floor: float = 0.8, rows: str | None = None) -> None:
    (repo / "train.py").write_text(TRAIN)
    (repo / "mlops.yaml").write_text(PIPELINE.format(floor=floor, python=sys.executable))
    (repo / "data").mkdir(exist_ok=True)
    if rows is None:
        lines = ["x1,x2,label"]
        for i in range(120):
            label = i % 2
            lines.append(f"{label * 3 + (i % 7) / 10},{(i % 5) / 10},{label}")
        rows = "\n".join(lines) + "\n"
    (repo / "data" / "train.csv").write_text(rows)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "project")


def record_checks(repo: Path) -> dict[str, object]:
    with sqlite3.connect(repo / ".mlops" / "runs.db") as db:
        rows = db.execute("SELECT name, checks FROM stages ORDER BY rowid DESC").fetchall()
    found = {}
    for name, checks in rows:
        found.setdefault(name, json.loads(checks) if checks else None)
    return found


def test_passing_checks_run_the_stage_and_register_the_model(repo: Path) -> None:
    write_project(repo)
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["registered"] == [
        {"stage": "train", "model": "demo", "version": 1, "promoted_to": "staging"}
    ]
    # The JSON output carries each stage's check results, as the run record does.
    shown_checks = {s["stage"]: s["checks"] for s in data["stages"]}
    assert shown_checks["report"] is None
    assert [s["suite"] for s in shown_checks["train"]["before"]["suites"]] == ["clean_data"]
    assert shown_checks["train"]["after"]["passed"] is True
    shown = json.loads(run_cli(repo, "model", "show", "demo@staging", "--json").stdout)
    assert shown["version"] == 1 or shown.get("number") == 1
    checks = record_checks(repo)["train"]
    assert isinstance(checks, dict)
    assert set(checks) == {"before", "after"}
    # Nothing changed: a second run registers nothing new.
    again = json.loads(run_cli(repo, "run", "--json").stdout)
    assert [r["version"] for r in again["registered"]] == [1]
    assert "registered demo:1" in run_cli(repo, "run").stdout


def test_failing_before_check_stops_the_stage_before_its_command(repo: Path) -> None:
    bad = "x1,x2,label\n1.0,0.1,0\n2.0,,1\n3.0,0.3,5\n"
    write_project(repo, rows=bad)
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "stage 'train': checks before it failed" in result.stderr
    assert "not_null" in result.stderr and "allowed" in result.stderr
    assert not (repo / "ran-train").exists()  # the command never started
    assert not (repo / "report.txt").exists()  # downstream did not run
    assert not (repo / "mlops.lock").exists()
    assert run_cli(repo, "model", "list", "--json").stdout.strip() in ("[]", "")


def flip_labels(repo: Path) -> None:
    """Flip every fourth label of the training data, so that no model reaches 0.999."""
    data = repo / "data" / "train.csv"
    header, *rows = data.read_text().splitlines()
    flipped = [r[:-1] + str(1 - int(r[-1])) if i % 4 == 0 else r for i, r in enumerate(rows)]
    data.write_text("\n".join([header, *flipped]) + "\n")


def test_failing_after_check_keeps_outputs_out_of_lock_and_registry(repo: Path) -> None:
    write_project(repo, floor=0.999)
    flip_labels(repo)
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "checks after it failed" in result.stderr and "accuracy" in result.stderr
    assert (repo / "ran-train").exists()  # the command ran
    assert not (repo / "report.txt").exists()
    lock = repo / "mlops.lock"
    assert not lock.exists() or "models/model.joblib" not in lock.read_text()
    listed = run_cli(repo, "model", "list", "--json")
    assert "demo" not in listed.stdout
    after = record_checks(repo)["train"]
    assert isinstance(after, dict) and after["after"]["passed"] is False


def test_model_that_failed_its_after_checks_cannot_be_promoted_by_hand(repo: Path) -> None:
    """The model a failed run left in the workspace keeps its failed checks when it is
    registered by hand, so the promotion gate refuses it."""
    write_project(repo, floor=0.999)
    flip_labels(repo)
    assert run_cli(repo, "run").exit_code == 1
    registered = run_cli(repo, "model", "register", "demo", "models/model.joblib", "--json")
    assert registered.exit_code == 0, registered.stderr
    shown = json.loads(run_cli(repo, "model", "show", "demo:1", "--json").stdout)
    assert shown["checks_state"] == "failed"
    assert shown["run"]["status"] == "failed"
    refused = run_cli(repo, "model", "promote", "demo", "1", "--to", "production")
    assert refused.exit_code == 1
    assert "its after checks failed" in refused.stderr and "accuracy" in refused.stderr
    after = json.loads(run_cli(repo, "model", "show", "demo:1", "--json").stdout)
    assert after["aliases"] == []


def strict_report(repo: Path) -> None:
    """The report stage gets after checks that no model passes."""
    text = (repo / "mlops.yaml").read_text()
    text = text.replace(
        "    outs: [report.txt]\n", "    outs: [report.txt]\n    checks: {after: [strict_model]}\n"
    )
    text = text.replace(
        "models:\n",
        "  strict_model:\n    model: models/model.joblib\n    data: data/train.csv\n"
        "    target: label\n    features: [x1, x2]\n    expect: [accuracy >= 1.01]\n"
        "models:\n",
    )
    (repo / "mlops.yaml").write_text(text)


def assert_registered_refused(repo: Path, run: CliResult, version: str, made_by: str) -> None:
    """``run`` registered ``version`` with the record of run ``made_by``, whose after checks
    failed on it, and so did not promote it."""
    assert run.exit_code == 1
    assert f"cannot promote {version} to staging: its after checks failed" in run.stderr
    shown = json.loads(run_cli(repo, "model", "show", version, "--json").stdout)
    assert shown["run"]["id"] == made_by
    assert shown["checks_state"] == "failed" and shown["aliases"] == []


def test_skipped_stage_registers_its_model_with_the_run_that_made_it(repo: Path) -> None:
    """`mlops run train` after a run whose downstream after checks failed on the model
    registers it with that run's results, so the gate refuses to promote it."""
    write_project(repo)
    strict_report(repo)
    first = run_cli(repo, "run")
    assert first.exit_code == 1 and "stage 'report': checks after it failed" in first.stderr
    made_by = yaml.safe_load((repo / "mlops.lock").read_text())["stages"]["train"]["run"]
    again = run_cli(repo, "run", "train")
    assert_registered_refused(repo, again, "demo:1", made_by)


def test_restored_stage_registers_its_model_with_the_run_that_made_it(repo: Path) -> None:
    """The same for a model restored from the run cache: the run that trained it failed
    the report's after checks on it."""
    write_project(repo)
    strict_report(repo)
    data = repo / "data" / "train.csv"
    rows = data.read_text()
    assert run_cli(repo, "run").exit_code == 1
    made_by = yaml.safe_load((repo / "mlops.lock").read_text())["stages"]["train"]["run"]
    data.write_text(rows + "0.1,0.2,0\n")
    assert run_cli(repo, "run", "train").exit_code == 0  # this model is not judged by report
    data.write_text(rows)
    again = run_cli(repo, "run", "train")
    assert "Stage 'train' restored" in again.stdout
    assert_registered_refused(repo, again, "demo:2", made_by)


def test_skipped_stage_registers_with_the_newest_verdict_on_its_model(repo: Path) -> None:
    """Once the report's checks are loosened and pass on the same model, the run that
    passed them is the one registered (not the older one where they failed)."""
    write_project(repo)
    strict_report(repo)
    assert run_cli(repo, "run").exit_code == 1
    text = (repo / "mlops.yaml").read_text().replace("accuracy >= 1.01", "accuracy >= 0.5")
    (repo / "mlops.yaml").write_text(text)
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {s["stage"]: s["status"] for s in data["stages"]} == {
        "train": "skipped",
        "report": "ran",
    }
    assert data["registered"][0]["promoted_to"] == "staging"
    shown = json.loads(run_cli(repo, "model", "show", "demo:1", "--json").stdout)
    assert shown["run"]["id"] == data["run_id"]
    assert shown["checks_state"] == "passed"


def stage_reasons(repo: Path) -> dict[str, list[str]]:
    result = run_cli(repo, "status", "--json")
    return {s["stage"]: s["reasons"] for s in json.loads(result.stdout)["stages"]}


def test_changed_checks_judge_the_stage_again(repo: Path) -> None:
    """Outputs judged by other checks are not taken as they are: a tightened suite makes
    its stage stale and the run judges it again (here it fails, and the lock keeps what
    the old checks passed); only moving the suite in the file changes nothing."""
    write_project(repo)
    assert run_cli(repo, "run").exit_code == 0
    locked = (repo / "mlops.lock").read_text()
    assert '"checks": "' in locked
    (repo / "ran-train").unlink()
    yaml_file = repo / "mlops.yaml"
    original = yaml_file.read_text()
    yaml_file.write_text("# the same suites, further down\n\n" + original)
    assert stage_reasons(repo) == {"train": [], "report": []}
    assert run_cli(repo, "run").exit_code == 0
    assert not (repo / "ran-train").exists()

    tightened = "      - not_null: [x1, x2, label]\n      - rows: {min: 1000}\n"
    yaml_file.write_text(original.replace("      - not_null: [x1, x2, label]\n", tightened))
    assert stage_reasons(repo)["train"] == ["checks changed"]
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "checks before it failed" in result.stderr and "rows" in result.stderr
    assert (repo / "mlops.lock").read_text() == locked

    # Back to the checks that passed them: the locked outputs hold again.
    yaml_file.write_text(original)
    assert stage_reasons(repo) == {"train": [], "report": []}
    # A stage given checks it did not have is judged by them; its outputs pass, so they
    # are kept and the lock records the new checks.
    report_deps = "    deps: [models/model.joblib]\n"
    checked = report_deps + "    checks: {before: [clean_data]}\n"
    yaml_file.write_text(original.replace(report_deps, checked))
    assert stage_reasons(repo)["report"] == ["checks changed"]
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert {s["stage"]: s["status"] for s in json.loads(result.stdout)["stages"]} == {
        "train": "skipped",
        "report": "rechecked",
    }
    assert not (repo / "ran-train").exists()
    assert stage_reasons(repo) == {"train": [], "report": []}


def set_accuracy_floor(repo: Path, floor: str) -> None:
    yaml_file = repo / "mlops.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("accuracy >= 0.8", f"accuracy >= {floor}"))


def test_changed_checks_judge_the_kept_model_without_training_again(repo: Path) -> None:
    """Only the suites changed: the model the lock names is judged by them instead of
    being trained again; it passes, so the lock takes the new checks."""
    write_project(repo)
    assert run_cli(repo, "run").exit_code == 0
    (repo / "ran-train").unlink()
    model = (repo / "models" / "model.joblib").read_bytes()
    old = yaml.safe_load((repo / "mlops.lock").read_text())["stages"]["train"]
    set_accuracy_floor(repo, "0.95")
    dry = run_cli(repo, "run", "--dry-run")
    assert "would check 'train' again, keeping its outputs: checks changed" in dry.stdout
    status = json.loads(run_cli(repo, "status", "--json").stdout)["stages"]
    assert [(s["stage"], s["recheck"]) for s in status] == [("train", True), ("report", False)]
    result = run_cli(repo, "run")
    assert result.exit_code == 0, result.stderr
    assert "Checking stage 'train' again, keeping its outputs: checks changed" in result.stdout
    assert "Stage 'train' passed its changed checks" in result.stdout
    assert "1 rechecked, 1 skipped" in result.stdout
    assert "registered demo:1" in result.stdout  # the same model: no new version
    assert not (repo / "ran-train").exists()
    assert (repo / "models" / "model.joblib").read_bytes() == model
    new = yaml.safe_load((repo / "mlops.lock").read_text())["stages"]["train"]
    assert new["checks"] != old["checks"] and new["outs"] == old["outs"]
    assert new["run"] != old["run"]
    checks = record_checks(repo)["train"]
    assert isinstance(checks, dict) and checks["after"]["passed"] is True
    assert "before" in checks  # the inputs are judged again too
    assert stage_reasons(repo) == {"train": [], "report": []}
    again = json.loads(run_cli(repo, "run", "--json").stdout)
    assert {s["stage"]: s["status"] for s in again["stages"]} == {
        "train": "skipped",
        "report": "skipped",
    }


def test_kept_model_that_fails_changed_checks_fails_the_stage(repo: Path) -> None:
    """Tightened checks the locked model does not pass fail the stage without training
    again: the model stays as it was, and so does the lock."""
    write_project(repo)
    assert run_cli(repo, "run").exit_code == 0
    (repo / "ran-train").unlink()
    locked = (repo / "mlops.lock").read_text()
    model = (repo / "models" / "model.joblib").read_bytes()
    set_accuracy_floor(repo, "1.01")
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 1
    assert "stage 'train': checks after it failed" in result.stderr
    stages = json.loads(result.stdout)["stages"]
    assert {s["stage"]: s["status"] for s in stages} == {"train": "failed", "report": "blocked"}
    failed = [r for r in stages[0]["checks"]["after"]["suites"][0]["results"]]
    assert [(r["check"], r["status"]) for r in failed] == [("accuracy", "fail")]
    assert not (repo / "ran-train").exists()
    assert (repo / "models" / "model.joblib").read_bytes() == model
    assert (repo / "mlops.lock").read_text() == locked
    assert stage_reasons(repo)["train"] == ["checks changed"]
    checks = record_checks(repo)["train"]
    assert isinstance(checks, dict) and checks["after"]["passed"] is False


def test_changed_checks_judge_the_locked_model_restored_when_missing(repo: Path) -> None:
    """A locked model missing from the workspace is restored from the cache and judged."""
    write_project(repo)
    assert run_cli(repo, "run").exit_code == 0
    (repo / "ran-train").unlink()
    model = (repo / "models" / "model.joblib").read_bytes()
    (repo / "models" / "model.joblib").unlink()
    set_accuracy_floor(repo, "0.95")
    # A dry run only promises a recheck where the outputs are there.
    assert "would run 'train': checks changed" in run_cli(repo, "run", "-n").stdout
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stderr
    train = next(s for s in json.loads(result.stdout)["stages"] if s["stage"] == "train")
    assert train["status"] == "rechecked"
    assert train["reasons"] == ["checks changed", "outputs restored from the lock"]
    assert not (repo / "ran-train").exists()
    assert (repo / "models" / "model.joblib").read_bytes() == model


def test_changed_checks_and_changed_data_train_again(repo: Path) -> None:
    write_project(repo)
    assert run_cli(repo, "run").exit_code == 0
    (repo / "ran-train").unlink()
    set_accuracy_floor(repo, "0.95")
    with (repo / "data" / "train.csv").open("a") as data:
        data.write("0.1,0.2,0\n")
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stderr
    train = next(s for s in json.loads(result.stdout)["stages"] if s["stage"] == "train")
    assert train["status"] == "ran"
    assert (repo / "ran-train").exists()


def test_undefined_suite_fails_before_anything_runs(repo: Path) -> None:
    write_project(repo)
    text = (repo / "mlops.yaml").read_text().replace("before: [clean_data]", "before: [nope]")
    (repo / "mlops.yaml").write_text(text)
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "stage 'train' checks.before" in result.stderr and "'nope'" in result.stderr
    assert not (repo / "ran-train").exists()


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ("{name: demo, path: elsewhere.joblib}", "is not an output of the stage"),
        ("{name: demo, path: models/model.joblib, alias: x}", "unknown key 'alias'"),
        ("{path: models/model.joblib}", "register.name: required"),
        ("[demo]", "must be a mapping"),
        ("{name: ../demo, path: models/model.joblib}", "invalid model name '../demo'"),
        ("{name: demo, path: models/model.joblib, promote: a..b}", "invalid alias name 'a..b'"),
        ("{name: demo, path: models/model.joblib, promote: 3}", "register.promote: must be"),
    ],
)
@pytest.mark.parametrize("command", [("run",), ("run", "--dry-run"), ("status",)])
def test_bad_register_declarations(
    repo: Path, register: str, message: str, command: tuple[str, ...]
) -> None:
    """A bad ``register:`` is refused when mlops.yaml is read, with its line: before any
    stage runs, and by the commands that only look."""
    write_project(repo)
    text = (repo / "mlops.yaml").read_text()
    text = text.replace(
        "register: {name: demo, path: models/model.joblib, promote: staging}",
        f"register: {register}",
    )
    (repo / "mlops.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("register:"))
    result = run_cli(repo, *command)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"mlops: error: mlops.yaml:{line}: stage 'train': ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (repo / "ran-train").exists()


@pytest.mark.parametrize("entry", ["before: [clean, 3]", "after: {a: b}", "before: [null]"])
def test_suite_names_of_a_stage_are_checked_when_read(repo: Path, entry: str) -> None:
    write_project(repo)
    text = (repo / "mlops.yaml").read_text()
    declared = "      before: [clean_data]\n      after: [good_model]\n"
    assert declared in text
    (repo / "mlops.yaml").write_text(text.replace(declared, f"      {entry}\n"))
    result = run_cli(repo, "status")
    assert result.exit_code == 1
    assert "stage 'train': checks." in result.stderr
    assert "must list suite names" in result.stderr
    assert result.stderr.startswith("mlops: error: mlops.yaml:")


def test_example_mlops_yaml_is_valid(tmp_path: Path) -> None:
    from mlops.core.repo import Repo
    from mlops.flows.safeguards import validate_safeguards
    from mlops.pipeline.schema import ModelRegistration, load_pipeline

    example = Path(__file__).parent.parent / "examples" / "iris"
    pipeline = load_pipeline(example)
    validate_safeguards(Repo(example), pipeline)
    assert pipeline.stages["train"].register == ModelRegistration(
        "iris", "models/model.joblib", "staging"
    )
