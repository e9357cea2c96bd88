"""``mlops monitor``: scoring batches against the production model, the history, bad input."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.monitor import build_project, copy_project, production, set_monitor, write_batch
from tests.helpers.repos import git


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("monitor") / "template")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def history(root: Path) -> list[dict[str, object]]:
    result = run_cli(root, "monitor", "history", "--json")
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def test_healthy_batch_exits_0_and_is_recorded(project: Path) -> None:
    write_batch(project, "incoming/b1.csv", seed=2)
    result = run_cli(project, "monitor")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "HEALTHY" in result.stdout
    assert "Batch incoming/b1.csv (300 rows) against sensor:1 (production)" in result.stdout
    assert "reference data/train.csv (1000 rows, lineage of sensor:1)" in result.stdout
    [record] = history(project)
    assert record["healthy"] is True
    assert record["batch_path"] == "incoming/b1.csv"
    assert record["model"] == "sensor" and record["version"] == "1"
    assert record["metrics"]["accuracy"] >= 0.9  # type: ignore[index]
    assert record["limits"] == {"accuracy": [">=", 0.9]}
    # The record is an object too, named by its hash (push and gc see it).
    oid = str(record["id"])
    assert (project / ".mlops/cache" / oid[:2] / oid[2:]).is_file()
    # Nothing new: the same batch is not scored twice, and that is not a failure.
    again = run_cli(project, "monitor")
    assert again.exit_code == 0
    assert "no new batch in incoming/: all 1 were scored already" in again.stdout
    assert len(history(project)) == 1


def test_drifted_batch_exits_1_with_json_and_html(project: Path) -> None:
    older = write_batch(project, "incoming/b1.csv", seed=2)
    os.utime(older, (1_000_000, 1_000_000))
    write_batch(project, "incoming/hot.csv", seed=3, hot=True)
    assert run_cli(project, "monitor").exit_code == 1  # the newest unseen first: hot.csv
    result = run_cli(project, "monitor", "--json")
    assert result.exit_code == 0, result.stderr  # then the older unseen one: b1.csv
    assert json.loads(result.stdout)["record"]["batch_path"] == "incoming/b1.csv"
    result = run_cli(
        project, "monitor", "--data", "incoming/hot.csv", "--json", "--html", "report.html"
    )
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "alert"
    record = data["record"]
    assert set(record["drift"]["drifted_features"]) >= {"temperature", "line"}
    assert "histogram" not in record["drift"]["features"][0]  # JSON leaves plot data out
    kinds = {f["name"]: f["kind"] for f in record["drift"]["features"]}
    assert kinds == {"temperature": "numeric", "vibration": "numeric", "line": "categorical"}
    assert record["drift"]["prediction"]["drifted"] is True
    assert record["metrics"]["accuracy"] < 0.9
    assert any("breaks the limit accuracy >= 0.9" in line for line in record["alerts"])
    assert data["html"] == "report.html"
    page = (project / "report.html").read_text()
    ET.fromstring(page.split("<!DOCTYPE html>", 1)[1])  # well-formed, self-contained
    assert "ALERT" in page and "incoming/hot.csv" in page
    assert "<svg" in page and "temperature" in page and "<script" not in page
    assert [r["healthy"] for r in history(project)] == [False, True, False]
    assert production(project) == "1"  # monitoring alone never changes production


def test_table_output_and_history_table(project: Path) -> None:
    write_batch(project, "hot.csv", seed=3, hot=True)
    result = run_cli(project, "monitor", "--data", "hot.csv")
    assert result.exit_code == 1
    assert "ALERT:" in result.stdout
    assert "features drifted" in result.stdout and "temperature" in result.stdout
    shown = run_cli(project, "monitor", "history")
    assert shown.exit_code == 0
    assert "hot.csv" in shown.stdout and "alert" in shown.stdout


def test_subprocess_monitor_and_gc_keeps_records(project: Path) -> None:
    write_batch(project, "incoming/b1.csv", seed=2)
    proc = run_subprocess(project, "monitor", "--json", "--retrain")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "healthy"
    assert "retrain" not in result["record"]["links"]  # healthy: nothing to heal
    oid = result["record_id"]
    assert run_cli(project, "gc").exit_code == 0
    assert (project / ".mlops/cache" / oid[:2] / oid[2:]).is_file()
    assert history(project)[0]["id"] == oid


def test_reference_from_config_and_explicit_features(project: Path) -> None:
    write_batch(project, "ref.csv", seed=5)
    write_batch(project, "b.csv", seed=6)
    set_monitor(
        project,
        """\
        monitor:
          model: sensor
          reference: ref.csv
          label: failure
          features: [temperature, vibration, line]
          thresholds: {prediction: false}
        """,
    )
    result = run_cli(project, "monitor", "--data", "b.csv", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)["record"]
    assert record["links"]["reference"]["path"] == "ref.csv"
    assert record["links"]["reference"]["source"] == "monitor.reference"
    assert record["drift"]["prediction"] is None
    assert record["metrics"] == {}  # no limits, no retraining: nothing to measure


# Bad input: one clear line, exit 1, production and history unchanged -----------------


def assert_refused(root: Path, result: object, *fragments: str) -> None:
    assert result.exit_code == 1, result.stdout  # type: ignore[attr-defined]
    stderr = result.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("mlops: error: ") and stderr.count("\n") == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr
    assert production(root) == "1"
    assert history(root) == []


def test_batch_columns_that_do_not_match_the_model(project: Path) -> None:
    import pandas as pd

    path = write_batch(project, "b.csv", seed=2)
    frame = pd.read_csv(path).rename(columns={"vibration": "vib"})
    frame.to_csv(path, index=False)
    result = run_cli(project, "monitor", "--data", "b.csv")
    assert_refused(
        project,
        result,
        "b.csv: columns do not match the model's features: missing vibration; unexpected vib",
    )


def test_empty_batch(project: Path) -> None:
    (project / "empty.csv").write_text("temperature,vibration,line,failure\n")
    assert_refused(project, run_cli(project, "monitor", "--data", "empty.csv"), "empty.csv")
    (project / "blank.csv").write_text("")
    assert_refused(project, run_cli(project, "monitor", "--data", "blank.csv"), "blank.csv")


def test_unlabelled_batch_judges_drift_and_leaves_the_limits_unjudged(project: Path) -> None:
    import pandas as pd

    path = write_batch(project, "b.csv", seed=2)
    pd.read_csv(path).drop(columns="failure").to_csv(path, index=False)
    result = run_cli(project, "monitor", "--data", "b.csv")
    assert result.exit_code == 0, result.stderr
    assert "Limits not judged: no labels yet (accuracy >= 0.9)" in result.stdout
    assert "HEALTHY: 0% of features drifted, no limit judged" in result.stdout
    [record] = history(project)
    assert record["metrics"] == {}


def test_no_production_model(project: Path) -> None:
    for tag in git(project, "tag", "--list", "model/sensor/@production/*").split():
        git(project, "tag", "-d", tag)
    write_batch(project, "b.csv", seed=2)
    result = run_cli(project, "monitor", "--data", "b.csv")
    assert result.exit_code == 1
    assert "model 'sensor' has no alias 'production'" in result.stderr
    assert history(project) == []


def test_missing_batch_and_unset_batches(project: Path) -> None:
    assert_refused(project, run_cli(project, "monitor", "--data", "nope.csv"), "nope.csv")
    set_monitor(project, "monitor:\n  model: sensor@production\n")
    assert_refused(project, run_cli(project, "monitor"), "monitor.batches: not set")
    assert_refused(project, run_cli(project, "monitor", "--retrain"), "monitor.retrain: not set")


def test_model_trained_without_a_run_needs_a_reference(project: Path) -> None:
    import shutil

    shutil.copy(project / "models/model.joblib", project / "outside.joblib")
    (project / "outside.joblib").chmod(0o644)
    with open(project / "outside.joblib", "ab") as handle:
        handle.write(b"\n")  # other bytes: a new version, made by no recorded run
    result = run_cli(project, "model", "register", "sensor", "outside.joblib")
    assert result.exit_code == 0, result.stderr
    set_monitor(project, "monitor:\n  model: sensor@staging\n  label: failure\n")
    assert run_cli(project, "model", "promote", "sensor", "2", "--to", "staging").exit_code == 0
    write_batch(project, "b.csv", seed=2)
    assert_refused(
        project,
        run_cli(project, "monitor", "--data", "b.csv"),
        "reference: cannot find the data sensor:2 was trained on",
        "set monitor.reference",
    )


def test_reference_found_without_its_cache_object(project: Path) -> None:
    """Lineage names content; the workspace file still holds it, or nothing does."""
    from mlops.storage.hashing import hash_file

    oid = hash_file(project / "data/train.csv")
    (project / ".mlops/cache" / oid[:2] / oid[2:]).unlink()
    write_batch(project, "b.csv", seed=2)
    result = run_cli(project, "monitor", "--data", "b.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["record"]["links"]["reference"]["hash"] == oid
    train = project / "data/train.csv"
    train.chmod(0o644)
    train.write_text(train.read_text() + "30.0,1.0,0,0\n")
    result = run_cli(project, "monitor", "--data", "b.csv")
    assert result.exit_code == 1
    assert f"data/train.csv (content {oid[:12]} not found: run `mlops pull`)" in result.stderr
