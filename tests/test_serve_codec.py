"""The serving JSON: orjson and the standard library write the same; and a prediction log
row holds what the request saw and answered."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from mlops.serve import codec
from mlops.serve.inputs import Rows
from mlops.serve.log import Entry, PredictionLog, log_table
from tests.helpers.monitor import log_files, log_rows

pytest.importorskip("orjson", reason="mlops[serve] brings orjson")


def test_orjson_and_the_standard_library_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": 1.5, "b": [1, 2.25, "x", True, None], "nan": math.nan, "inf": -math.inf}
    fast = codec.dumps(value)
    monkeypatch.setattr(codec, "orjson", None)
    assert codec.dumps(value) == fast
    assert json.loads(fast) == {"a": 1.5, "b": [1, 2.25, "x", True, None], "nan": None,
                                "inf": None}  # fmt: skip


def test_nan_in_a_body_is_parsed_so_the_check_can_name_its_column() -> None:
    assert math.isnan(codec.loads(b'{"t": NaN}')["t"])
    with pytest.raises(json.JSONDecodeError):
        codec.loads(b'{"t": 1,')
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b'{"t": "\xff"}')


def _rows(entries: list[Entry]) -> list[dict[str, object]]:
    return log_table(entries).to_pylist()  # type: ignore[no-any-return]


def test_a_log_row_per_input_row_in_order(tmp_path: Path) -> None:
    rows = Rows(("x", "y"), ([1.0, 2.5], [3, 4]), 2)
    entry = Entry("r1", 0.0, "m", "2", rows, [0, 1], [[0.75, 0.25], [0.5, 0.5]], [0, 1])
    logged = _rows([entry])
    assert [list(row) for row in logged] == [
        ["request_id", "time", "model", "version", "row", "x", "y", "prediction", "proba_0",
         "proba_1"]] * 2  # fmt: skip
    assert logged[1]["row"] == 1 and logged[1]["x"] == 2.5 and logged[1]["prediction"] == 1
    assert logged[1]["y"] == 4.0 and isinstance(logged[1]["y"], float)  # whole numbers: floats
    assert logged[0]["time"] == "1970-01-01T00:00:00.000+00:00" and logged[1]["proba_1"] == 0.5
    log = PredictionLog(tmp_path, rows=3)  # many entries at once: batched, rolled at 3 rows
    for i in range(5):
        log.submit(Entry(f"r{i}", 0.0, "m", "2", rows, [0, 1], None, None))
    log.close()
    files = log_files(tmp_path)
    counts = [len(log_rows(p)) for p in files]
    assert sum(counts) == 10 and all(c >= 3 for c in counts[:-1])
    assert log.stats().written == 10 and log.stats().dropped == 0
    assert [r["request_id"] for r in log_rows(tmp_path)] == [f"r{i // 2}" for i in range(10)]


def test_the_model_arrays_log_as_their_lists_do() -> None:
    rows = Rows(("x", "y"), ([1.0, 2.5], [3, 4]), 2)
    proba = np.array([[0.75, 0.25], [0.5, 0.5]])
    as_lists = Entry("r1", 0.0, "m", "2", rows, [0, 1], proba.tolist(), [0, 1])
    features = np.array(rows.columns, dtype=np.float64)
    as_arrays = Entry("r1", 0.0, "m", "2", rows, np.array([0, 1]), proba, [0, 1], features)
    assert _rows([as_arrays]) == _rows([as_lists])
    assert _rows([as_arrays, as_lists]) == _rows([as_lists]) * 2  # of both kinds at once
    shell = Entry("r1", 0.0, "m", "2", rows.names_only(), np.array([0, 1]), proba, [0, 1], features)
    assert shell.problem() is None and _rows([shell, as_lists]) == _rows([as_lists]) * 2
    labels = Entry("r2", 0.0, "m", "2", rows, np.array(["yes", "no"]), None, None, features)
    assert [r["prediction"] for r in _rows([labels])] == ["yes", "no"]


def test_a_log_row_holds_strings_mixed_kinds_and_non_finite_answers() -> None:
    rows = Rows(("50% size", "kind", "any"), ([1, 2], ['a "b", c', "%d%s}\n"], [1.5, "x"]), 2)
    entry = Entry("r%d", 0.0, "m", "1", rows, ["yes, no", math.nan], None, None)
    logged = _rows([entry])
    assert [row["kind"] for row in logged] == ['a "b", c', "%d%s}\n"]
    assert [row["50% size"] for row in logged] == [1, 2]
    assert [row["any"] for row in logged] == ["1.5", "x"]  # numbers and text: as text
    assert [row["prediction"] for row in logged] == ["yes, no", "nan"]
    assert logged[0]["request_id"] == "r%d"
    short = Entry("r", 0.0, "m", "1", rows, [1], None, None)  # fewer answers than rows
    assert short.problem() == "1 predictions for 2 rows"


def test_a_file_closes_early_for_rows_its_columns_cannot_hold(tmp_path: Path) -> None:
    rows = Rows(("x",), ([1.0],), 1)
    log = PredictionLog(tmp_path / "two", rows=100)
    for i, answer in enumerate([1, 1, 0.5, "text", None]):
        log.submit(Entry(f"r{i}", 0.0, "m", "1", rows, [answer], None, None))
        deadline = time.monotonic() + 60
        while log.stats().written <= i and time.monotonic() < deadline:
            time.sleep(0.01)  # taken before the next comes: a batch each
    other = Rows(("z",), ([2.0],), 1)  # another model's features: another file
    log.submit(Entry("z", 0.0, "m", "2", other, [1], None, None))
    log.close()
    assert log.stats().written == 6 and log.stats().dropped == 0
    logged = log_rows(tmp_path / "two")
    assert [r["request_id"] for r in logged] == ["r0", "r1", "r2", "r3", "r4", "z"]
    assert [r["prediction"] for r in logged[:5]] == [1, 1, 0.5, "text", None]
    assert len(log_files(tmp_path / "two")) >= 3


def _arrays(request_id: str, version: str, predictions: list[float]) -> Entry:
    """An entry as a plain estimator's request makes it: the model's own arrays."""
    n = len(predictions)
    features = np.arange(n, dtype=np.float64).reshape(1, n)
    return Entry(request_id, float(n), "m", version, Rows(("x",), (), n),
                 np.array(predictions), None, None, features)  # fmt: skip


def test_array_entries_held_over_batches_keep_their_kinds_and_values(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, rows=100)
    answers = [[1, 2], [3], [0.5], [4], [5, 6]]  # whole numbers, then a fraction, then whole
    for i, predictions in enumerate(answers):
        log.submit(_arrays(f"r{i}", "1" if i % 2 else "2", predictions))
        deadline = time.monotonic() + 60
        while log.stats().written < sum(map(len, answers[: i + 1])):
            assert time.monotonic() < deadline
            time.sleep(0.01)  # taken before the next comes: a batch each, all held
    log.close()
    assert log.stats().written == 7 and log.stats().dropped == 0
    logged = log_rows(tmp_path)
    assert [r["request_id"] for r in logged] == ["r0", "r0", "r1", "r2", "r3", "r4", "r4"]
    assert [r["prediction"] for r in logged] == [1, 2, 3, 0.5, 4.0, 5.0, 6.0]
    assert [r["version"] for r in logged] == ["2", "2", "1", "2", "1", "2", "2"]
    assert [r["model"] for r in logged] == ["m"] * 7
    assert [r["time"] for r in logged] == ["1970-01-01T00:00:02.000+00:00"] * 2 + [
        "1970-01-01T00:00:01.000+00:00"] * 3 + ["1970-01-01T00:00:02.000+00:00"] * 2  # fmt: skip
    assert [r["row"] for r in logged] == [0, 1, 0, 0, 0, 0, 1]
    assert [r["x"] for r in logged] == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    files = log_files(tmp_path)  # the fraction closed the file of whole numbers
    assert [len(log_rows(p)) for p in files] == [3, 4]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_writer_brings_the_counts_up_to_date_unasked(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    log = PredictionLog(tmp_path, max_pending=3, on_counts=lambda: seen.append(
        (log.written, log.dropped)))  # fmt: skip
    assert log.submit(_arrays("a", "1", [1, 2]))
    deadline = time.monotonic() + 60
    while (2, 0) not in seen:  # after its batch, with no request and no /metrics
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not log.submit(_arrays("b", "1", [1, 2, 3, 4]))  # over the bound of 3 rows
    assert seen[-1] == (2, 4)  # a drop is counted at once, on the request's side
    log.close()


def test_logged_times_are_the_iso_text_of_each_request_to_the_millisecond() -> None:
    from datetime import UTC, datetime

    times = [0.0, 1.0015, 1.0019996, 1764700000.1234567, 1764700000.9999996, 1764700000.123]
    entries = [_arrays(f"r{i}", "1", [1]) for i in range(len(times))]
    entries = [Entry(e.request_id, t, e.model, e.version, e.rows, e.predictions, None, None,
                     e.features) for e, t in zip(entries, times, strict=True)]  # fmt: skip
    expected = [datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds") for t in times]
    assert [r["time"] for r in _rows(entries)] == expected
