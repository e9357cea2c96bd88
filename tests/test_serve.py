"""``mlops serve``: a real uvicorn process on 127.0.0.1, real HTTP, a real registered model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.monitor import (
    build_project,
    copy_project,
    log_files,
    log_rows,
    production,
    write_batch,
)
from tests.helpers.serve import HOT_ROW, ROW, Server, httpx, start_server, wait_for

FEATURES = ["temperature", "vibration", "line"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("serve") / "template")


@pytest.fixture(scope="module")
def shared(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that only send requests (small body limit, logging on)."""
    root = copy_project(template, tmp_path_factory.mktemp("shared") / "project")
    server = start_server(root, "sensor@production", "--max-body", "20000")
    yield server
    server.stop()


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def test_register_records_the_signature_from_the_training_data(template: Path) -> None:
    result = run_cli(template, "model", "show", "sensor@production", "--json")
    signature = json.loads(result.stdout)["signature"]
    assert signature["source"] == "training data"
    assert [f["name"] for f in signature["features"]] == FEATURES
    assert {f["type"] for f in signature["features"]} == {"number"}


def test_predict_answers_every_form_with_the_version(shared: Server) -> None:
    one = shared.post("/predict", json=ROW)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == "sensor" and body["version"] == "1" and len(body["hash"]) == 64
    assert body["predictions"] in ([0], [1])
    assert body["classes"] == [0, 1] and abs(sum(body["probabilities"][0]) - 1) < 1e-9
    assert one.headers["x-model-version"] == "sensor:1"
    assert one.headers["x-request-id"] == body["request_id"]

    many = shared.post("/predict", json=[ROW, HOT_ROW, ROW])
    assert many.status_code == 200 and len(many.json()["predictions"]) == 3
    split = {
        "columns": FEATURES,
        "data": [[ROW[c] for c in FEATURES], [HOT_ROW[c] for c in FEATURES]],
    }
    assert (
        shared.post("/predict", json=split).json()["predictions"] == many.json()["predictions"][:2]
    )
    csv = "line,temperature,vibration\n1,25.0,1.5\n2,60,4.0\n"
    answer = shared.post("/predict", content=csv, headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == many.json()["predictions"][:2]
    given = shared.post("/predict", json=ROW, headers={"x-request-id": "abc-123"})
    assert given.json()["request_id"] == "abc-123"


def test_invocations_takes_mlflow_forms(shared: Server) -> None:
    rows = [[ROW[c] for c in FEATURES], [HOT_ROW[c] for c in FEATURES]]
    expected = shared.post("/predict", json=[ROW, HOT_ROW]).json()["predictions"]
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": rows}},
        {"dataframe_records": [ROW, HOT_ROW]},
        {"instances": [ROW, HOT_ROW]},
        {"instances": rows},
        {"inputs": {c: [ROW[c], HOT_ROW[c]] for c in FEATURES}},
    ]
    for body in bodies:
        answer = shared.post("/invocations", json=body)
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json() == {"predictions": expected}
        assert answer.headers["x-model-version"] == "sensor:1"
    csv = "temperature,vibration,line\n25,1.5,1\n60,4,2\n"
    answer = shared.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert answer.json() == {"predictions": expected}


@pytest.mark.parametrize(
    ("body", "status", "column", "words"),
    [
        (b'{"temperature": 25,', 400, None, "malformed JSON"),
        (b"", 400, None, "empty body"),
        (b"   ", 400, None, "empty body"),
        (json.dumps({**ROW, "colour": 1}).encode(), 422, "colour", "unknown column"),
        (json.dumps({"temperature": 1, "vibration": 2}).encode(), 422, "line", "missing column"),
        (json.dumps({**ROW, "vibration": "high"}).encode(), 422, "vibration", "string 'high'"),
        (json.dumps({**ROW, "vibration": None}).encode(), 422, "vibration", "null"),
        (b'{"temperature": NaN, "vibration": 1, "line": 1}', 422, "temperature", "finite"),
        (b'{"temperature": Infinity, "vibration": 1, "line": 1}', 422, "temperature", "finite"),
        (json.dumps({**ROW, "line": True}).encode(), 422, "line", "bool"),
        (json.dumps([ROW, {**ROW, "extra": 2}]).encode(), 422, "extra", "row 1"),
        (json.dumps({"columns": FEATURES, "data": [[1, 2]]}).encode(), 422, None, "3 values"),
        (b"[]", 400, None, "no rows"),
        (b"42", 400, None, "expected a JSON object"),
        (json.dumps([{**ROW, "x": "y" * 100}] * 300).encode(), 413, None, "over the limit"),
    ],
)
def test_bad_input_is_a_json_4xx_naming_the_column(
    shared: Server, body: bytes, status: int, column: str | None, words: str
) -> None:
    answer = shared.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert words in error["error"] and error["column"] == column
    if column:
        assert repr(column) in error["error"]
    assert shared.post("/predict", json=ROW).status_code == 200  # still up


def test_bad_csv_and_mlflow_bodies_are_4xx(shared: Server) -> None:
    csv = {"content-type": "text/csv"}
    for body, column in [
        ("temperature,vibration,line\n25,abc,1\n", "vibration"),
        ("temperature,vibration\n25,1\n", "line"),
        ("temperature,vibration,line,more\n25,1,1,0\n", "more"),
        ("temperature,vibration,line\n25,inf,1\n", "vibration"),
    ]:
        answer = shared.post("/invocations", content=body, headers=csv)
        assert answer.status_code == 422 and answer.json()["column"] == column, answer.text
    assert shared.post("/invocations", json={"rows": []}).status_code == 400
    both = {"instances": [ROW], "inputs": [ROW]}
    assert shared.post("/invocations", json=both).status_code == 400


def test_health_version_and_metrics(shared: Server) -> None:
    assert shared.get("/health/live").json() == {"live": True}
    ready = shared.get("/health/ready").json()
    assert ready["ready"] is True and ready["status"] == "ok" and ready["version"] == "1"
    version = shared.get("/version").json()
    assert version["model"] == "sensor" and version["alias"] == "production"
    assert version["version"] == "1" and len(version["commit"]) == 40
    assert [f["name"] for f in version["signature"]["features"]] == FEATURES
    shared.post("/predict", json=[ROW, ROW])
    shared.post("/predict", content=b"{", headers={"content-type": "application/json"})
    metrics = shared.get("/metrics").text
    for name in (
        'mlops_requests_total{code="200",endpoint="/predict"}',
        'mlops_requests_total{code="400",endpoint="/predict"}',
        'mlops_request_errors_total{endpoint="/predict"}',
        'mlops_request_duration_seconds_bucket{endpoint="/predict",le="0.1"}',
        'mlops_rows_total{endpoint="/predict"}',
        "mlops_in_flight_requests",
        'mlops_model_info{hash="',
        'mlops_prediction_log_rows_total{outcome="written"}',
    ):
        assert name in metrics, name


def test_unknown_alias_or_missing_model_is_one_line_exit_1(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "serve", "sensor@canary", "--port", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "mlops: error: model 'sensor' has no alias 'canary' (aliases: production)"
    ]
    # The model object is neither in the cache nor on a remote (none is configured).
    shown = json.loads(run_cli(project, "model", "show", "sensor:1", "--json").stdout)
    oid = shown["content"]["hash"]
    os.unlink(project / ".mlops" / "cache" / oid[:2] / oid[2:])
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "serve", "sensor:1", "--port", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not in the cache" in lines[0] and "remote" in lines[0]


def test_missing_extra_is_one_line_naming_it(project: Path) -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None; "
        "sys.argv = ['mlops', 'serve', 'sensor@production']; "
        "from mlops.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "mlops: error: serving needs uvicorn: install them with pip install 'mlops[serve]'"
    ]


def _register_v2(root: Path) -> None:
    write_batch(root, "data/train.csv", seed=7, hot=True, rows=1000)
    result = run_cli(root, "run")
    assert result.exit_code == 0, result.stdout + result.stderr
    result = run_cli(root, "model", "register", "sensor", "models/model.joblib")
    assert result.exit_code == 0, result.stderr


def test_server_follows_its_alias_without_failing_a_request(project: Path) -> None:
    server = start_server(project, "sensor@production", "--poll", "0.2", "--no-log")
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                r = client.post(server.url + "/predict", json=[ROW, HOT_ROW])
                answers.append((r.status_code, r.json().get("version", "")))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        wait_for(lambda: len(answers) > 5, "traffic on v1")
        _register_v2(project)
        promoted = run_cli(project, "model", "promote", "sensor", "2", "--to", "production")
        assert promoted.exit_code == 0, promoted.stderr
        wait_for(lambda: server.get("/version").json()["version"] == "2", "the switch to v2")
        seen = len(answers)
        wait_for(lambda: len(answers) > seen + 5, "traffic on v2")
    finally:
        stop.set()
        sender.join()
    assert all(code == 200 for code, _ in answers), answers
    versions = [v for _, v in answers]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # never back to v1 once v2 served
    assert "now serving sensor:2 (was sensor:1)" in server.text()
    metrics = server.get("/metrics").text
    assert 'mlops_model_info{hash="' in metrics and 'version="2"' in metrics
    assert 'version="1"' not in metrics

    # The alias moves to a version whose file is corrupt: v2 keeps serving, and says why.
    (project / "models" / "model.joblib").unlink()
    write_batch(project, "data/train.csv", seed=9, hot=True, rows=900)
    assert run_cli(project, "run").exit_code == 0
    assert run_cli(project, "model", "register", "sensor", "models/model.joblib").exit_code == 0
    oid = json.loads(run_cli(project, "model", "show", "sensor:3", "--json").stdout)["content"][
        "hash"
    ]
    obj = project / ".mlops" / "cache" / oid[:2] / oid[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"not a model")
    forced = run_cli(
        project, "model", "promote", "sensor", "3", "--to", "production", "--force", "--reason", "t"
    )
    assert forced.exit_code == 0, forced.stderr
    ready = wait_for(
        lambda: (r := server.get("/health/ready").json())["problems"] and r, "the reload failure"
    )
    assert ready["status"] == "degraded" and ready["version"] == "2"
    assert "still serving sensor:2" in ready["problems"][0] and "corrupt" in ready["problems"][0]
    assert server.post("/predict", json=ROW).json()["version"] == "2"
    assert "still serving sensor:2" in server.text()
    assert server.stop()


def test_predictions_are_logged_to_rolling_batches_flushed_on_sigterm(project: Path) -> None:
    server = start_server(project, "--log-rows", "7")  # the model: monitor.model
    sent = 0
    for i in range(10):
        rows = [ROW, HOT_ROW] if i % 2 else [ROW]
        assert (
            server.post("/predict", json=rows, headers={"x-request-id": f"r{i}"}).status_code == 200
        )
        sent += len(rows)
    assert server.post("/invocations", json={"dataframe_records": [ROW]}).status_code == 200
    sent += 1
    assert server.post("/predict", json={"bad": 1}).status_code == 422  # not logged
    assert server.stop()  # SIGTERM: the open file is closed and renamed
    folder = project / "incoming"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left
    files = log_files(folder)
    assert len(files) >= 2  # rolled over at 7 rows
    lines = log_rows(folder)
    assert len(lines) == sent
    first = lines[0]
    assert first["request_id"] == "r0" and first["row"] == 0 and first["version"] == "1"
    assert first["model"] == "sensor" and str(first["time"]).endswith("+00:00")
    assert {k: first[k] for k in ROW} == ROW
    assert first["prediction"] in (0, 1) and "proba_0" in first and "proba_1" in first
    assert {line["request_id"] for line in lines} >= {f"r{i}" for i in range(10)}


def test_unwritable_log_folder_keeps_serving_and_counts_drops(project: Path) -> None:
    blocker = project / "blocked"
    blocker.write_text("a file where the log folder should be")
    server = start_server(project, "--log-dir", str(blocker / "logs"))
    for _ in range(3):
        assert server.post("/predict", json=[ROW, HOT_ROW]).status_code == 200
    ready = wait_for(
        lambda: (r := server.get("/health/ready").json())["problems"] and r, "the log problem"
    )
    assert ready["status"] == "degraded" and "cannot write" in ready["problems"][0]
    metrics = server.get("/metrics").text
    assert 'mlops_prediction_log_rows_total{outcome="dropped"} 6.0' in metrics
    assert server.stop()


def test_production_label_is_what_the_server_started_on(project: Path) -> None:
    assert production(project) == "1"
    server = start_server(project, "sensor:1", "--no-log", "--workers", "2")
    answers = {server.post("/predict", json=ROW).json()["version"] for _ in range(6)}
    assert answers == {"1"}
    assert server.stop(signal.SIGINT)


def test_sigkill_loses_only_the_open_file_and_never_a_closed_one(project: Path) -> None:
    server = start_server(project, "--log-rows", "4", "--log-seconds", "3600")
    for i in range(5):
        assert server.post("/predict", json=[ROW, HOT_ROW], headers={"x-request-id": f"k{i}"})
    folder = project / "incoming"
    wait_for(lambda: len(log_files(folder)) == 2, "two closed files")
    server.stop(signal.SIGKILL)
    closed = log_files(folder)
    assert len(log_rows(folder)) == 8  # the two closed files are whole
    assert all(len(log_rows(p)) == 4 for p in closed)
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".tmp") for name in hidden)  # the open file, never a batch
    scored = run_cli(project, "monitor", "--json")  # four rows of two kinds: may alert
    assert scored.exit_code in (0, 1) and not scored.stderr, scored.stderr
    assert json.loads(scored.stdout)["record"]["batch_path"].startswith("incoming/predictions-")


def test_feedback_needs_a_prediction_log(project: Path) -> None:
    server = start_server(project, "--no-log")
    answer = server.post("/feedback", json={"request_id": "x", "label": 1})
    assert answer.status_code == 409 and "logs no predictions" in answer.json()["error"]
    assert server.stop()


def test_a_log_file_closes_after_its_time_with_no_more_traffic(project: Path) -> None:
    server = start_server(project, "--log-seconds", "0.5")
    assert server.post("/predict", json=ROW).status_code == 200
    folder = project / "incoming"
    wait_for(lambda: log_files(folder), "the file to close by time")
    assert len(log_rows(folder)) == 1
    assert server.stop()


def _metric(text: str, name: str) -> float:
    """The value of the sample line that starts with ``name`` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_workers_share_their_metrics_in_a_private_folder_removed_at_exit(project: Path) -> None:
    server = start_server(project, "sensor@production", "--workers", "2", "--log-dir", "logs")
    shared = Path(wait_for(lambda: re.search(r"share their metrics in (\S+)", server.text()),
                           "the metrics folder").group(1))  # fmt: skip
    assert shared.is_dir()
    sent = 0
    for _ in range(20):  # a new connection each: the kernel hands them to either worker
        assert server.post("/predict", json=[ROW, HOT_ROW]).status_code == 200
        sent += 1
    served = 'mlops_requests_total{code="200",endpoint="/predict"}'
    # Each worker writes its own file; both answered.
    wait_for(lambda: len({p.name.rsplit("_", 1)[-1] for p in shared.glob("counter_*.db")}) == 2,
             "both workers to count requests")  # fmt: skip
    written = 'mlops_prediction_log_rows_total{outcome="written"}'
    # Each worker's log writer brings its counts up to date after its batch, unasked.
    wait_for(lambda: _metric(server.get("/metrics").text, written) == 2 * sent, "logged rows")
    for _ in range(10):  # whichever worker answers /metrics, it reports the whole server
        text = server.get("/metrics").text
        assert _metric(text, served) == sent
        assert _metric(text, written) == 2 * sent
        assert _metric(text, 'mlops_rows_total{endpoint="/predict"}') == 2 * sent
        assert _metric(text, "mlops_in_flight_requests") == 0
        assert 'mlops_model_info{hash="' in text
    assert server.stop()
    assert not shared.exists()


def test_a_killed_servers_metrics_folder_is_removed_by_the_next_to_start(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the server's temporary folder, not /tmp
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = temp / f"mlops-serve-metrics-{gone.stdout.strip()}-abc"  # as a SIGKILL leaves it
    dead.mkdir()
    (dead / "counter_1.db").write_bytes(b"")
    other = temp / "mlops-serve-metrics-notapid"  # not ours to judge: kept
    other.mkdir()
    server = start_server(project, "--no-log", "--workers", "2")
    shared = Path(wait_for(lambda: re.search(r"share their metrics in (\S+)", server.text()),
                           "the metrics folder").group(1))  # fmt: skip
    assert not dead.exists() and other.is_dir()
    assert shared.parent == temp and f"-{server.proc.pid}-" in shared.name
    assert server.stop()
    assert not shared.exists()


def test_ready_is_503_until_the_model_is_loaded_and_warmed_up(project: Path) -> None:
    from starlette.testclient import TestClient

    from mlops.serve.app import ServeSettings, build_app

    app = build_app(ServeSettings(str(project), "sensor@production"))
    before = TestClient(app)  # no lifespan yet: nothing loaded
    answer = before.get("/health/ready")
    assert answer.status_code == 503 and answer.json()["ready"] is False
    assert before.get("/health/live").status_code == 200
    with TestClient(app) as started:  # the lifespan loads the model and warms it up
        ready = started.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["version"] == "1"
    assert TestClient(app).get("/health/ready").status_code == 503  # stopped
