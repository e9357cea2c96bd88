"""``mlops predict``: batch scoring of a file in chunks, logged like the server's requests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.monitor import build_project, copy_project, log_rows, write_batch


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("predict") / "template")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def test_scores_a_file_in_chunks_and_logs_it(project: Path) -> None:
    from mlops.core.repo import Repo
    from mlops.registry.content import load_model

    write_batch(project, "rows.csv", seed=4, rows=50)
    result = run_cli(
        project, "predict", "sensor@production", "--data", "rows.csv", "-o", "out.csv",
        "--chunk-rows", "7", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 50 and summary["chunks"] == 8 and summary["version"] == "1"
    out = pd.read_csv(project / "out.csv")
    rows = pd.read_csv(project / "rows.csv")
    model = load_model("sensor@production", Repo(project))
    expected = model.predict(rows[["temperature", "vibration", "line"]])
    assert out["prediction"].tolist() == expected.tolist()
    assert list(out.columns) == [*rows.columns, "prediction", "proba_0", "proba_1"]
    lines = log_rows(project / "incoming")
    assert len(lines) == 50 and {line["version"] for line in lines} == {"1"}
    assert "failure" not in lines[0]  # only the features are logged
    monitored = run_cli(project, "monitor", "--json")
    assert monitored.exit_code == 0, monitored.stderr
    assert json.loads(monitored.stdout)["record"]["links"]["prediction_log"] is True


def test_parquet_and_json_lines(project: Path) -> None:
    rows = pd.read_csv(write_batch(project, "rows.csv", seed=4, rows=20))
    rows.to_json(project / "rows.jsonl", orient="records", lines=True)
    for data, out in (("rows.jsonl", "out.parquet"), ("rows.csv", "out.jsonl")):
        result = run_cli(project, "predict", "sensor:1", "--data", data, "-o", out, "--no-log")
        assert result.exit_code == 0, result.stderr
        assert "scored 20 rows" in result.stdout
    assert len(pd.read_parquet(project / "out.parquet")) == 20
    assert len(pd.read_json(project / "out.jsonl", lines=True)) == 20
    assert not (project / "incoming").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.drop(columns="line"),
            "rows.csv: missing column 'line': the model takes temperature, vibration, line",
        ),
        (
            lambda f: f.assign(vibration=["high"] + [1.0] * (len(f) - 1)),
            "rows.csv: column 'vibration' row 1: 'high' is not a finite number",
        ),
        (
            lambda f: f.assign(temperature=[1.0] * (len(f) - 1) + [float("nan")]),
            "rows.csv: column 'temperature' row 20: nan is not a finite number",
        ),
    ],
)
def test_bad_rows_are_one_line_and_write_nothing(project: Path, edit: object, message: str) -> None:
    frame = pd.read_csv(write_batch(project, "rows.csv", seed=4, rows=20))
    edit(frame).to_csv(project / "rows.csv", index=False)  # type: ignore[operator]
    result = run_cli(project, "predict", "sensor@production", "--data", "rows.csv", "-o", "o.csv")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"mlops: error: {message}"]
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(("o.", ".o."))) == []


def test_existing_output_needs_force(project: Path) -> None:
    write_batch(project, "rows.csv", seed=4, rows=5)
    (project / "o.csv").write_text("mine\n")
    args = ("predict", "sensor@production", "--data", "rows.csv", "-o", "o.csv", "--no-log")
    result = run_cli(project, *args)
    assert result.exit_code == 1 and "o.csv: already exists; use --force" in result.stderr
    assert (project / "o.csv").read_text() == "mine\n"
    assert run_cli(project, *args, "--force").exit_code == 0
    assert len(pd.read_csv(project / "o.csv")) == 5
