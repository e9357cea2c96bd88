"""Monitoring history: append-only SQLite table, canonical record bytes, listing."""

from __future__ import annotations

import sqlite3
import threading

import blake3
import numpy as np
import pandas as pd
import pytest

from mlops.errors import MonitorError
from mlops.monitor.drift import detect_drift
from mlops.monitor.history import (
    DB_NAME,
    MonitorRecord,
    append_record,
    list_records,
    series,
)


@pytest.fixture(scope="module")
def drift_dict():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    batch = pd.DataFrame({"x": rng.normal(1, 1, 500), "c": rng.choice(["a", "b"], 500)})
    return detect_drift(reference, batch).to_dict()


def make_record(drift, day: int, model: str = "churn", version: str = "1", **extra):
    return MonitorRecord(
        model=model,
        version=version,
        batch_path=f"data/batch{day}.csv",
        batch_hash=f"{day:064x}",
        drift=drift,
        metrics={"accuracy": 0.9 - day / 100},
        limits={"accuracy": (">=", 0.85)},
        time=f"2026-01-{day:02d}T00:00:00.000000Z",
        **extra,
    )


@pytest.fixture
def mlops_dir(tmp_path):
    folder = tmp_path / ".mlops"
    folder.mkdir()
    return folder


def test_append_returns_canonical_bytes_whose_hash_is_the_record_id(mlops_dir, drift_dict):
    record = make_record(drift_dict, 1, alerts=("1 of 2 features drifted",))
    data = append_record(mlops_dir, record)
    assert data == record.to_json_bytes()
    assert blake3.blake3(data).hexdigest() == record.record_id
    again = MonitorRecord.from_json_bytes(data)
    assert again == record and again.to_json_bytes() == data
    assert not again.healthy
    # Importing the same object again (after a pull) adds nothing.
    append_record(mlops_dir, again)
    assert list_records(mlops_dir) == [record]


def test_list_orders_by_time_and_filters(mlops_dir, drift_dict):
    records = [make_record(drift_dict, day) for day in (3, 1, 2)]
    other = make_record(drift_dict, 4, model="fraud", version="7")
    for record in [*records, other]:
        append_record(mlops_dir, record)
    churn = list_records(mlops_dir, model="churn")
    assert [r.time[:10] for r in churn] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert list_records(mlops_dir, model="fraud", version="7") == [other]
    assert list_records(mlops_dir, model="fraud", version="8") == []
    newest = list_records(mlops_dir, limit=2)
    assert [r.time[:10] for r in newest] == ["2026-01-03", "2026-01-04"]
    assert series(churn, "accuracy") == [(r.time, r.metrics["accuracy"]) for r in churn]
    assert series(churn, "drifted_share") == [(r.time, drift_dict["drifted_share"]) for r in churn]


def test_table_is_append_only_wal_and_queryable(mlops_dir, drift_dict):
    append_record(mlops_dir, make_record(drift_dict, 1, alerts=("drift",)))
    db = sqlite3.connect(mlops_dir / DB_NAME)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = db.execute(
            "SELECT model, version, batch_path, status, json_extract(drift, '$.drifted_share'),"
            " json_extract(metrics, '$.accuracy'), drift FROM monitor_results"
        ).fetchone()
        assert row[:6] == (
            "churn",
            "1",
            "data/batch1.csv",
            "alert",
            drift_dict["drifted_share"],
            0.89,
        )
        assert "histogram" not in row[6]  # the summary column leaves out plot data
        for statement in ("UPDATE monitor_results SET model = 'x'", "DELETE FROM monitor_results"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()


def test_listing_without_history_creates_nothing(mlops_dir):
    assert list_records(mlops_dir) == []
    assert not (mlops_dir / DB_NAME).exists()


def test_concurrent_appends_all_land(mlops_dir, drift_dict):
    def writer(model: str) -> None:
        for day in range(1, 11):
            append_record(mlops_dir, make_record(drift_dict, day, model=model))

    threads = [threading.Thread(target=writer, args=(f"m{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list_records(mlops_dir)) == 30


def test_bad_places_and_bad_records(tmp_path, mlops_dir, drift_dict):
    with pytest.raises(MonitorError, match="does not exist"):
        append_record(tmp_path / "nowhere", make_record(drift_dict, 1))
    (mlops_dir / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(MonitorError, match=r"monitor\.db: the monitoring history is unreadable"):
        list_records(mlops_dir)
    with pytest.raises(MonitorError, match="metric 'accuracy' is not finite"):
        MonitorRecord(
            model="m",
            version="1",
            batch_path="b",
            batch_hash="h",
            drift={},
            metrics={"accuracy": float("nan")},
        )
    with pytest.raises(MonitorError, match="limit for 'accuracy'"):
        MonitorRecord(
            model="m",
            version="1",
            batch_path="b",
            batch_hash="h",
            drift={},
            limits={"accuracy": ("==", 0.9)},
        )
    with pytest.raises(MonitorError, match="bad time"):
        MonitorRecord(model="m", version="1", batch_path="b", batch_hash="h", drift={}, time="now")
    with pytest.raises(MonitorError, match="not JSON"):
        MonitorRecord.from_json_bytes(b"\xff{")
    with pytest.raises(MonitorError, match="missing or bad field"):
        MonitorRecord.from_json_bytes(b'{"model": "m"}')
