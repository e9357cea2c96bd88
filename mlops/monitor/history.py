"""The monitoring history: one append-only SQLite table in ``.mlops/monitor.db``.

Each scored batch becomes a :class:`MonitorRecord`. Its canonical JSON bytes are what the
caller stores as a cache object (so push/pull carry it); the record id is the BLAKE3 digest of
those bytes, the same id the object store gives them, so appending an imported record twice is
a no-op.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.sqlite import connect
from mlops.errors import MonitorError

DB_NAME = "monitor.db"
_SCHEMA_VERSION = 1
_LIMIT_OPERATORS = (">=", "<=")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    batch_path TEXT NOT NULL,
    batch_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('healthy', 'alert')),
    drift TEXT NOT NULL,
    metrics TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_results_model_time ON monitor_results (model, time);
CREATE TRIGGER IF NOT EXISTS monitor_results_no_update BEFORE UPDATE ON monitor_results
BEGIN SELECT RAISE(ABORT, 'the monitoring history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS monitor_results_no_delete BEFORE DELETE ON monitor_results
BEGIN SELECT RAISE(ABORT, 'the monitoring history is append-only'); END;
"""


def utc_now() -> str:
    """The current time as the history stores it: ISO 8601, UTC, microseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class MonitorRecord:
    """One scored batch.

    ``drift`` is ``DriftReport.to_dict()`` (histograms included, so a report can be redrawn
    from the record alone); ``metrics`` the live metrics measured on the batch; ``limits``
    the metric thresholds in force, as ``{"accuracy": (">=", 0.85)}``; ``alerts`` one line per
    reason to alert (empty when healthy); ``links`` whatever the caller ties to this result
    (the retraining run, the promotion decision).
    """

    model: str
    version: str
    batch_path: str
    batch_hash: str
    drift: Mapping[str, Any]
    alerts: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    links: Mapping[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        try:
            datetime.strptime(self.time, "%Y-%m-%dT%H:%M:%S.%fZ")
        except (TypeError, ValueError) as exc:
            raise MonitorError(f"monitor record: bad time {self.time!r}") from exc
        for name, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MonitorError(f"monitor record: metric {name!r} is not a number: {value!r}")
            if not math.isfinite(value):
                raise MonitorError(f"monitor record: metric {name!r} is not finite: {value}")
        for name, limit in self.limits.items():
            if not (
                isinstance(limit, tuple | list)
                and len(limit) == 2
                and limit[0] in _LIMIT_OPERATORS
                and isinstance(limit[1], int | float)
                and not isinstance(limit[1], bool)
            ):
                raise MonitorError(
                    f"monitor record: limit for {name!r} must be (operator, number) with an "
                    f"operator in {', '.join(_LIMIT_OPERATORS)}, got {limit!r}"
                )

    @property
    def healthy(self) -> bool:
        return not self.alerts

    @property
    def record_id(self) -> str:
        """BLAKE3 hex digest of :meth:`to_json_bytes`: the record's object id."""
        import blake3

        return str(blake3.blake3(self.to_json_bytes()).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "model": self.model,
            "version": self.version,
            "batch_path": self.batch_path,
            "batch_hash": self.batch_hash,
            "healthy": self.healthy,
            "alerts": list(self.alerts),
            "metrics": dict(self.metrics),
            "limits": {name: [op, value] for name, (op, value) in self.limits.items()},
            "drift": dict(self.drift),
            "links": dict(self.links),
        }

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): equal records give equal bytes."""
        try:
            text = json.dumps(
                self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise MonitorError(f"monitor record: cannot be written as JSON: {exc}") from exc
        return text.encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorRecord:
        try:
            return cls(
                model=str(data["model"]),
                version=str(data["version"]),
                batch_path=str(data["batch_path"]),
                batch_hash=str(data["batch_hash"]),
                drift=dict(data["drift"]),
                alerts=tuple(str(a) for a in data["alerts"]),
                metrics=dict(data["metrics"]),
                limits={name: (op, value) for name, (op, value) in data["limits"].items()},
                links=dict(data["links"]),
                time=str(data["time"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MonitorError(f"invalid monitor record: missing or bad field {exc}") from exc

    @classmethod
    def from_json_bytes(cls, data: bytes) -> MonitorRecord:
        """The record stored in ``data`` (as written by :meth:`to_json_bytes`)."""
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MonitorError(f"invalid monitor record: not JSON ({exc})") from exc
        if not isinstance(parsed, dict):
            raise MonitorError("invalid monitor record: expected a JSON object")
        return cls.from_dict(parsed)


def append_record(mlops_dir: Path, record: MonitorRecord) -> bytes:
    """Append ``record`` to the history and return its JSON bytes (to store as an object).

    Appending a record that is already there (same bytes) changes nothing.
    """
    data = record.to_json_bytes()
    summary = {key: value for key, value in record.drift.items() if key != "features"}
    summary["features"] = [
        {key: value for key, value in feature.items() if key != "histogram"}
        for feature in record.drift.get("features", [])
    ]
    row = (
        record.record_id,
        record.time,
        record.model,
        record.version,
        record.batch_path,
        record.batch_hash,
        "healthy" if record.healthy else "alert",
        json.dumps(summary, sort_keys=True),
        json.dumps(dict(record.metrics), sort_keys=True),
        data,
    )
    with _connect(mlops_dir, create=True) as db:
        db.execute(
            "INSERT OR IGNORE INTO monitor_results (id, time, model, version, batch_path, "
            "batch_hash, status, drift, metrics, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    return data


def list_records(
    mlops_dir: Path,
    model: str | None = None,
    version: str | None = None,
    limit: int | None = None,
) -> list[MonitorRecord]:
    """The history, oldest first; optionally one model (and version), the newest ``limit``."""
    if not (mlops_dir / DB_NAME).exists():
        return []
    where, params = [], []
    for column, value in (("model", model), ("version", version)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    query = "SELECT record FROM monitor_results"
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY time DESC, seq DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    with _connect(mlops_dir, create=False) as db:
        rows = db.execute(query, params).fetchall()
    return [MonitorRecord.from_json_bytes(row[0]) for row in reversed(rows)]


def series(records: Sequence[MonitorRecord], metric: str) -> list[tuple[str, float]]:
    """(time, value) of one metric across records; ``drifted_share`` reads the drift summary."""
    points = []
    for record in records:
        value = (
            record.drift.get(metric) if metric == "drifted_share" else record.metrics.get(metric)
        )
        if isinstance(value, int | float) and not isinstance(value, bool):
            points.append((record.time, float(value)))
    return points


@contextmanager
def _connect(mlops_dir: Path, create: bool) -> Iterator[sqlite3.Connection]:
    if not mlops_dir.is_dir():
        raise MonitorError(f"{mlops_dir} does not exist: run `mlops init` first")
    path = mlops_dir / DB_NAME
    try:
        db = connect(path)
    except sqlite3.OperationalError as exc:  # no access, or still locked after the timeout
        raise MonitorError(f"{path}: cannot open the monitoring history ({exc})") from exc
    except sqlite3.DatabaseError as exc:  # not an SQLite file
        raise MonitorError(f"{path}: the monitoring history is unreadable ({exc})") from exc
    try:
        if create:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            elif version != _SCHEMA_VERSION:
                raise MonitorError(
                    f"{path}: monitoring history schema {version} is newer than this mlops "
                    f"understands ({_SCHEMA_VERSION})"
                )
        with db:
            yield db
    except sqlite3.DatabaseError as exc:
        raise MonitorError(f"{path}: the monitoring history is unreadable ({exc})") from exc
    finally:
        db.close()
