"""Self-healing: retrain on an alert, judge candidate against production, promote or not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops.storage.hashing import hash_file
from tests.helpers.cli import run_cli
from tests.helpers.monitor import build_project, copy_project, production, set_monitor, write_batch


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("heal") / "template")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def monitor_json(root: Path, *args: str) -> tuple[int, dict[str, object], str]:
    result = run_cli(root, "monitor", "--json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def model_history(root: Path) -> list[dict[str, str]]:
    result = run_cli(root, "model", "history", "sensor", "--json")
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def test_on_alert_retrain_promotes_a_better_candidate(project: Path) -> None:
    monitor = (
        (project / "mlops.yaml")
        .read_text()
        .replace("  retrain:\n", "  on_alert: retrain\n  retrain:\n")
    )
    (project / "mlops.yaml").write_text(monitor)
    write_batch(project, "incoming/hot.csv", seed=3, hot=True)
    before = hash_file(project / "data/train.csv")
    code, data, stderr = monitor_json(project)
    assert code == 0, stderr  # an alert the episode healed
    assert data["status"] == "healed"
    record = data["record"]
    assert isinstance(record, dict) and record["healthy"] is False
    episode, retrain = record["links"]["episode"], record["links"]["retrain"]
    assert retrain["status"] == "promoted", retrain["reason"]
    # Its run recorded only checks before training: no "after" verdict for the gate.
    assert retrain["candidate"]["ref"] == "sensor:2" and retrain["candidate"]["checks"] == "none"
    evaluation = retrain["evaluation"]
    assert evaluation["rows"] == 90 and evaluation["held_out"] is True  # 30% of 300
    assert evaluation["candidate"] > evaluation["production"] + 0.05
    assert retrain["data"] == {
        "path": "data/train.csv",
        "mode": "append",
        "rows_before": 1000,
        "rows_added": 210,
        "hash_before": before,
        "hash_after": hash_file(project / "data/train.csv"),
        "restored": False,
    }
    assert retrain["promotion"]["from"] == "1" and retrain["promotion"]["to"] == "2"
    assert production(project) == "2"
    # The training data grew by the batch's other rows and its pointer follows it.
    assert len(pd.read_csv(project / "data/train.csv")) == 1210
    pointer = (project / "data/train.csv.mlops").read_text()
    assert retrain["data"]["hash_after"] in pointer
    # The run is a real pipeline run, recorded as made by the monitor, with its checks.
    run = run_cli(project, "runs", "show", retrain["run"]["id"], "--json")
    assert run.exit_code == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["argv"][:2] == ["mlops", "monitor"]
    assert shown["stages"][0]["checks"]["before"]["passed"] is True
    # The registry's history names the episode; the monitoring history holds its record.
    entries = model_history(project)
    assert entries[-2]["action"] == "register" and episode in entries[-2]["reason"]
    promotion = entries[-1]
    assert promotion["action"] == "promote" and promotion["version"] == "2"
    assert promotion["reason"].startswith(f"monitor episode {episode}: accuracy ")
    assert promotion["tag"] == retrain["promotion"]["tag"]
    history = json.loads(run_cli(project, "monitor", "history", "--json").stdout)
    assert [r["id"] for r in history] == [data["record_id"]]
    assert history[0]["links"]["episode"] == episode


def assert_production_stays(root: Path, result: object, before: str, *fragments: str) -> dict:
    """Exit 1, one ``mlops: error:`` line saying why, sensor:1 still in production."""
    assert result.exit_code == 1, result.stdout  # type: ignore[attr-defined]
    errors = [
        line
        for line in result.stderr.splitlines()  # type: ignore[attr-defined]
        if line.startswith("mlops: error:")
    ]
    assert len(errors) == 1, result.stderr  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in errors[0]
    assert production(root) == "1"
    assert hash_file(root / "data/train.csv") == before  # put back as it was
    history = json.loads(run_cli(root, "monitor", "history", "--json").stdout)
    retrain = history[-1]["links"]["retrain"]
    assert retrain["status"] == "failed" and retrain["promotion"] is None
    return dict(retrain)


def test_a_failing_retraining_run_keeps_production(project: Path) -> None:
    write_batch(project, "hot.csv", seed=3, hot=True)
    (project / "train.py").write_text("import sys\nsys.exit('out of memory')\n")
    before = hash_file(project / "data/train.csv")
    result = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
    retrain = assert_production_stays(
        project, result, before, "retraining failed", "stage 'train' failed"
    )
    assert retrain["run"]["status"] == "failed" and retrain["candidate"] is None
    assert retrain["data"]["restored"] is True
    assert "data/train.csv was put back as it was" in result.stdout


def test_failing_checks_keep_production(project: Path) -> None:
    path = write_batch(project, "hot.csv", seed=3, hot=True)
    frame = pd.read_csv(path)
    frame.loc[:5, "failure"] = 2  # labels the training data's checks do not allow
    frame.to_csv(path, index=False)
    before = hash_file(project / "data/train.csv")
    result = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
    retrain = assert_production_stays(
        project, result, before, "checks before it failed", "training_data"
    )
    assert retrain["run"]["stages"] == {"train": "failed"}
    assert (project / "data/train.csv.mlops").read_text().count(before) == 1


@pytest.mark.parametrize(
    ("append_to", "labelled", "fragment"),
    [
        ("models/model.joblib", True, "models/model.joblib is an output of stage 'train'"),
        ("nope.csv", True, "training data nope.csv does not exist"),
        ("data/train.csv", False, "hot.csv: no label column 'failure': an unlabelled batch"),
    ],
)
def test_retraining_that_cannot_start(
    project: Path, append_to: str, labelled: bool, fragment: str
) -> None:
    path = write_batch(project, "hot.csv", seed=3, hot=True)
    if not labelled:
        pd.read_csv(path).drop(columns="failure").to_csv(path, index=False)
    monitor = (
        f"monitor:\n  model: sensor\n  label: failure\n  retrain: {{append_to: {append_to}}}\n"
    )
    set_monitor(project, monitor)
    before = hash_file(project / "data/train.csv")
    result = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
    retrain = assert_production_stays(project, result, before, fragment)
    assert retrain["run"] is None and retrain["data"] is None


def test_a_candidate_that_is_not_better_is_not_promoted(project: Path) -> None:
    # "lower is better" for accuracy: the (much more accurate) candidate loses.
    set_monitor(
        project,
        """\
        monitor:
          model: sensor@production
          label: failure
          categorical: [line]
          retrain:
            replace: data/train.csv
            holdout: 0
            compare: {accuracy: lower}
        """,
    )
    write_batch(project, "hot.csv", seed=3, hot=True)
    result = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
    assert result.exit_code == 1, result.stderr  # the alert stands
    assert "kept production sensor:1: the candidate is not better (lower is better)" in (
        result.stdout
    )
    assert production(project) == "1"
    history = json.loads(run_cli(project, "monitor", "history", "--json").stdout)
    retrain = history[-1]["links"]["retrain"]
    assert retrain["status"] == "kept" and retrain["promotion"] is None
    assert retrain["candidate"]["ref"] == "sensor:2"  # registered, but not promoted
    assert retrain["evaluation"]["held_out"] is False and retrain["evaluation"]["rows"] == 300
    # replace: the training data is now the batch (the new data stays: it is real data).
    assert pd.read_csv(project / "data/train.csv").equals(pd.read_csv(project / "hot.csv"))
    assert [e["action"] for e in model_history(project)] == ["register", "promote", "register"]


def test_two_retrainings_at_once(project: Path) -> None:
    write_batch(project, "hot.csv", seed=3, hot=True)
    (project / "slow").write_text("3")
    first = subprocess.Popen(
        [sys.executable, "-m", "mlops", "monitor", "--retrain", "--data", "hot.csv", "--json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project / "started").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first retraining never started training"
            time.sleep(0.05)
        second = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
        assert second.exit_code == 1
        assert second.stderr.startswith(
            "mlops: error: another `mlops monitor --retrain` is running in this repository (pid "
        )
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert json.loads(out)["status"] == "healed"
    assert production(project) == "2"
    history = json.loads(run_cli(project, "monitor", "history", "--json").stdout)
    assert len(history) == 1  # the refused one recorded nothing
    assert [e["action"] for e in model_history(project)].count("register") == 2


@pytest.mark.slow
def test_drift_scenario_script_runs_end_to_end(tmp_path: Path) -> None:
    import os

    script = Path(__file__).parent.parent / "examples" / "drift_scenario.sh"
    env = {**os.environ, "PYTHON": sys.executable, "CLEANUP": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    clean, shifted, healed = proc.stdout.split("(exit code ")[1:4]
    assert clean.startswith("0") and "HEALTHY" in proc.stdout.split("(exit code 0)")[0]
    assert shifted.startswith("1") and "ALERT:" in shifted + proc.stdout
    assert healed.startswith("0")
    assert "Retraining (episode ep-" in proc.stdout and "production: 1 -> 2" in proc.stdout
    history = proc.stdout.split("$ mlops model history sensor")[1]
    assert "promoted 2 to production (was 1): monitor episode ep-" in history
    assert list(tmp_path.iterdir()) == []  # CLEANUP=1 removed the repository


def test_retraining_on_rows_already_in_the_training_data_adds_nothing(project: Path) -> None:
    write_batch(project, "hot.csv", seed=3, hot=True)
    train = project / "data/train.csv"
    # The batch already joined the training data (an earlier episode, or by hand).
    current, batch = pd.read_csv(train), pd.read_csv(project / "hot.csv")
    pd.concat([current, batch[current.columns]]).to_csv(train, index=False)
    assert run_cli(project, "add", "data/train.csv").exit_code == 0
    before = hash_file(train)
    result = run_cli(project, "monitor", "--retrain", "--data", "hot.csv")
    assert result.exit_code == 1, result.stderr  # the alert stands
    assert "every row of hot.csv is already in data/train.csv" in result.stdout
    assert hash_file(train) == before and len(pd.read_csv(train)) == 1300
    assert production(project) == "1"
    history = json.loads(run_cli(project, "monitor", "history", "--json").stdout)
    retrain = history[-1]["links"]["retrain"]
    assert retrain["status"] == "kept" and retrain["run"] is None


def test_only_rows_not_yet_in_the_training_data_are_added() -> None:
    from mlops.monitor.heal import _not_in

    current = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, 1.0, float("nan")]})
    # The same values read back with other dtypes (1 and 1.0) still match; NaN matches NaN.
    rows = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "z", None, "x"], "c": [0.5, 1.0, None, 0.5]}
    )
    assert _not_in(rows, current).index.tolist() == [1, 3]
