"""The loop: a real server logs predictions into the batch folder, labels join later by
request id, and ``mlops monitor`` judges drift without labels and the limits with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.monitor import build_project, copy_project, frame, log_files, log_rows
from tests.helpers.serve import Server, start_server

FEATURES = ["temperature", "vibration", "line"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("loop") / "template")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def send(server: Server, seed: int, hot: bool, prefix: str) -> list[dict[str, Any]]:
    """300 rows in 10 requests with ids PREFIX0..9; returns the rows with their labels."""
    rows = json.loads(frame(300, seed, hot).to_json(orient="records"))  # type: ignore[attr-defined]
    for i in range(10):
        chunk = rows[i * 30 : (i + 1) * 30]
        body = [{k: r[k] for k in FEATURES} for r in chunk]
        answer = server.post("/predict", json=body, headers={"x-request-id": f"{prefix}{i}"})
        assert answer.status_code == 200, answer.text
    return rows


def monitor(root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli(root, "monitor", *args, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def test_logged_traffic_is_judged_without_labels_then_with_them(project: Path) -> None:
    server = start_server(project, "--log-rows", "1000")
    rows = send(server, seed=3, hot=False, prefix="c")
    labels = [
        {"request_id": f"c{i // 30}", "row": i % 30, "label": r["failure"]}
        for i, r in enumerate(rows)
    ]
    assert server.post("/feedback", json=labels[:150]).json() == {"accepted": 150}
    assert (
        server.post("/feedback", json={"request_id": "c9", "label": "x", "row": -1}).status_code
        == 422
    )
    assert server.stop()
    [log] = log_files(project / "incoming")

    code, result, err = monitor(project)
    assert code == 0, err
    record = result["record"]
    assert result["status"] == "healthy" and record["batch_path"] == f"incoming/{log.name}"
    assert record["links"]["prediction_log"] is True
    assert record["links"]["not_judged"] == ["accuracy >= 0.9"] and record["metrics"] == {}
    assert record["drift"]["prediction"] is not None  # from the logged predictions
    assert [f["name"] for f in record["drift"]["features"]] == FEATURES

    joined = run_cli(project, "monitor", "label", "--json")
    assert joined.exit_code == 0, joined.stderr
    assert json.loads(joined.stdout) == {"labels": 150, "matched": 150, "files": 1, "pending": 0}
    assert not list((project / "incoming" / ".labels").iterdir())  # joined, so removed
    code, result, err = monitor(project)  # the labelled log is new content: scored again
    assert code == 0, err
    record = result["record"]
    assert record["links"]["labels"] == {"rows": 150, "of": 300}
    assert record["links"]["not_judged"] == [] and record["metrics"]["accuracy"] >= 0.9

    # The rest arrive as a file; a row label wins over nothing, the batch is all labelled.
    table = project / "labels.csv"
    table.write_text(
        "request_id,row,failure\n"
        + "".join(f"{r['request_id']},{r['row']},{r['label']}\n" for r in labels[150:])
    )
    joined = run_cli(project, "monitor", "label", str(table))
    assert joined.exit_code == 0, joined.stderr
    assert "joined 150 labels into 1 prediction logs (150 read)" in joined.stdout
    code, result, err = monitor(project)
    assert result["record"]["links"]["labels"] == {"rows": 300, "of": 300}
    lines = log_rows(log)
    assert [line["failure"] for line in lines] == [r["failure"] for r in rows]


def test_shifted_traffic_alerts_on_drift_without_labels(project: Path) -> None:
    server = start_server(project)
    send(server, seed=5, hot=True, prefix="h")
    assert server.stop()
    code, result, err = monitor(project)
    assert code == 1, err
    assert result["status"] == "alert" and result["record"]["links"]["not_judged"]
    drifted = {f["name"] for f in result["record"]["drift"]["features"] if f["drifted"]}
    assert "temperature" in drifted


def test_bad_labels_file_is_one_line(project: Path) -> None:
    (project / "incoming").mkdir()
    bad = project / "bad.csv"
    bad.write_text("id,failure\nx,1\n")
    result = run_cli(project, "monitor", "label", "bad.csv")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "mlops: error: bad.csv: no column 'request_id': a labels file has request_id, "
        "optionally row, and the label (failure)"
    ]
    result = run_cli(project, "monitor", "label", "missing.csv")
    assert result.exit_code == 1 and "missing.csv: no such labels file" in result.stderr


@pytest.mark.slow
def test_serve_loop_example_runs_end_to_end(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "examples" / "serve_loop.sh"
    env = {**os.environ, "PYTHON": sys.executable, "CLEANUP": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "ready: sensor:1" in out and "HEALTHY" in out and "ALERT:" in out
    assert "production: 1 -> 2" in out and "now serving sensor:2 (was sensor:1)" in out
    answered = out.split("(status version: count)")[1].split("server:")[0]
    assert " 200 1" in answered and " 200 2" in answered  # both served, none failed
    assert "stopped:" in out and "ep-" in out.split("$ mlops monitor history")[1]
    assert list(tmp_path.iterdir()) == []


def test_labels_join_parquet_logs_and_the_json_lines_of_older_ones(project: Path) -> None:
    from mlops.serve.inputs import Rows
    from mlops.serve.log import Entry, PredictionLog

    rows = json.loads(frame(60, 7, False).to_json(orient="records"))  # type: ignore[attr-defined]
    folder = project / "incoming"
    log = PredictionLog(folder)
    for i in range(2):
        chunk = rows[i * 30 : (i + 1) * 30]
        features = Rows(tuple(FEATURES), tuple([r[k] for r in chunk] for k in FEATURES), 30)
        answers = [r["failure"] for r in chunk]
        log.submit(Entry(f"p{i}", 0.0, "sensor", "1", features, answers, None, None))
    log.close()
    old = folder / "predictions-20200101T000000000000Z-1-1.jsonl"  # as releases before wrote
    old.write_text("".join(
        json.dumps({"request_id": f"j{i // 30}", "time": "2020-01-01T00:00:00.000+00:00",
                    "model": "sensor", "version": "1", "row": i % 30,
                    **{k: r[k] for k in FEATURES}, "prediction": r["failure"]}) + "\n"
        for i, r in enumerate(rows)
    ))  # fmt: skip
    labels = project / "labels.csv"
    labels.write_text(
        "request_id,row,failure\n"
        + "".join(f"p{i // 30},{i % 30},{r['failure']}\n" for i, r in enumerate(rows))
        + "".join(f"j{i // 30},{i % 30},{r['failure']}\n" for i, r in enumerate(rows[:30]))
    )
    joined = run_cli(project, "monitor", "label", "labels.csv", "--json")
    assert joined.exit_code == 0, joined.stderr
    assert json.loads(joined.stdout) == {"labels": 90, "matched": 90, "files": 2, "pending": 0}
    [parquet] = log_files(folder)
    assert [r["failure"] for r in log_rows(parquet)] == [r["failure"] for r in rows]
    lines = [json.loads(line) for line in old.read_text().splitlines()]
    assert [line.get("failure") for line in lines] == [r["failure"] for r in rows[:30]] + [
        None
    ] * 30
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left
    code, result, err = monitor(project, "--data", str(parquet.relative_to(project)))
    assert code in (0, 1) and result, err  # 60 rows may drift; they are read, and judged
    assert result["record"]["metrics"], result
    assert result["record"]["links"]["labels"] == {"rows": 60, "of": 60}
    assert [f["name"] for f in result["record"]["drift"]["features"]] == FEATURES
