"""The serving JSON: orjson and the standard library write the same, and a log line holds
what the request saw and answered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlops.serve import codec
from mlops.serve.inputs import Rows
from mlops.serve.log import Entry, PredictionLog

pytest.importorskip("orjson", reason="mlops[serve] brings orjson")


def test_orjson_and_the_standard_library_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": 1.5, "b": [1, 2.25, "x", True, None], "nan": math.nan, "inf": -math.inf}
    fast = codec.dumps(value), codec.dumps_line({"k": 0.1, "n": math.nan})
    monkeypatch.setattr(codec, "orjson", None)
    assert (codec.dumps(value), codec.dumps_line({"k": 0.1, "n": math.nan})) == fast
    assert json.loads(fast[0]) == {"a": 1.5, "b": [1, 2.25, "x", True, None], "nan": None,
                                   "inf": None}  # fmt: skip


def test_nan_in_a_body_is_parsed_so_the_check_can_name_its_column() -> None:
    assert math.isnan(codec.loads(b'{"t": NaN}')["t"])
    with pytest.raises(json.JSONDecodeError):
        codec.loads(b'{"t": 1,')
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b'{"t": "\xff"}')


def test_a_log_line_per_row_in_order(tmp_path: Path) -> None:
    rows = Rows(("x", "y"), ([1.0, 2.5], [3, 4]), 2)
    entry = Entry("r1", 0.0, "m", "2", rows, [0, 1], [[0.75, 0.25], [0.5, 0.5]], [0, 1])
    lines = [json.loads(line) for line in entry.encode().splitlines()]
    assert [list(line) for line in lines] == [
        ["request_id", "time", "model", "version", "row", "x", "y", "prediction", "proba_0",
         "proba_1"]] * 2  # fmt: skip
    assert lines[1]["row"] == 1 and lines[1]["x"] == 2.5 and lines[1]["prediction"] == 1
    assert lines[0]["time"] == "1970-01-01T00:00:00.000+00:00"
    log = PredictionLog(tmp_path, rows=3)  # many entries at once: batched, rolled at 3 rows
    for i in range(5):
        log.submit(Entry(f"r{i}", 0.0, "m", "2", rows, [0, 1], None, None))
    log.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    counts = [len(p.read_text().splitlines()) for p in files]
    assert sum(counts) == 10 and all(c >= 3 for c in counts[:-1])
    assert log.stats().written == 10 and log.stats().dropped == 0


def test_a_log_line_holds_strings_percent_signs_and_non_finite_answers() -> None:
    rows = Rows(("50% size", "kind"), ([1, 2], ['a "b", c', "%d%s}\n"]), 2)
    entry = Entry("r%d", 0.0, "m", "1", rows, ["yes, no", math.nan], None, None)
    lines = [json.loads(line) for line in entry.encode().splitlines()]
    assert [line["kind"] for line in lines] == ['a "b", c', "%d%s}\n"]
    assert [line["50% size"] for line in lines] == [1, 2]
    assert [line["prediction"] for line in lines] == ["yes, no", None]
    assert lines[0]["request_id"] == "r%d"
    with pytest.raises(ValueError):  # a model that answers fewer rows than it was given
        Entry("r", 0.0, "m", "1", rows, [1], None, None).encode()
