"""Labels that arrive after the predictions: joined into the prediction logs by request id.

``mlops monitor label FILE`` reads a table with ``request_id`` (``row`` too, for requests
of several rows) and the label column (``monitor.label``, or ``label``); without a file it
takes the feedback the server collected (``POST /feedback``, kept in ``.labels/``). Each
closed log file (Parquet, or the JSON lines of older logs) that gains labels is rewritten
whole, in its own format (temporary file, then rename), so its
content changes and ``mlops monitor`` scores it again, now judging the metric limits.
Feedback for requests in no closed log yet is kept for the next join.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlops.core.repo import Repo
from mlops.errors import InputError
from mlops.monitor.config import load_monitor_config
from mlops.monitor.predlog import (
    DEFAULT_LABEL,
    FEEDBACK_DIR,
    FEEDBACK_SUFFIX,
    LOG_PREFIX,
    LOG_SUFFIX,
    LOG_SUFFIXES,
    REQUEST_ID,
    ROW,
    batch_folder,
)

Key = tuple[str, int | None]  # (request id, row); row None: every row of the request


@dataclass(frozen=True)
class LabelJoin:
    """What a join did."""

    labels: int  # label records read
    matched: int  # logged rows that got their label
    files: int  # log files rewritten
    pending: int  # records whose request is in no closed log (feedback kept for later)

    def to_dict(self) -> dict[str, int]:
        return {
            "labels": self.labels,
            "matched": self.matched,
            "files": self.files,
            "pending": self.pending,
        }


def join_labels(repo: Repo, source: str | None = None) -> LabelJoin:
    """Join the labels of ``source`` (a data file), or the server's feedback, into the logs."""
    config = load_monitor_config(repo.root)
    folder = batch_folder(repo.root, config.batches)
    name = config.label or DEFAULT_LABEL
    feedback: list[Path] = []
    if source is not None:
        labels = _labels_from_file(Path(source), source, name)
    else:
        feedback = sorted((folder / FEEDBACK_DIR).glob(f"*{FEEDBACK_SUFFIX}"))
        labels = {}
        for path in feedback:
            labels.update(_labels_from_feedback(path))
    used: set[Key] = set()
    matched = files = 0
    logs = [p for p in folder.glob(f"{LOG_PREFIX}*") if p.name.endswith(LOG_SUFFIXES)]
    for path in sorted(logs):
        join = _join_parquet if path.name.endswith(LOG_SUFFIX) else _join_lines
        count = join(path, labels, name, used)
        matched += count
        files += bool(count)
    if source is None:
        _keep_pending(feedback, used)
    return LabelJoin(len(labels), matched, files, len(set(labels) - used))


def _labels_from_file(path: Path, shown: str, name: str) -> dict[Key, Any]:
    from mlops.monitor.monitoring import read_frame

    if not path.is_file():
        raise InputError(f"{shown}: no such labels file")
    frame = read_frame(path, shown)
    column = name if name in frame.columns else DEFAULT_LABEL
    for needed in (REQUEST_ID, column):
        if needed not in frame.columns:
            raise InputError(
                f"{shown}: no column {needed!r}: a labels file has {REQUEST_ID}, "
                f"optionally {ROW}, and the label ({name})"
            )
    records = json.loads(frame.to_json(orient="records"))
    labels: dict[Key, Any] = {}
    for i, record in enumerate(records):
        key = _key(record, f"{shown} row {i + 1}")
        if record.get(column) is not None:
            labels[key] = record[column]
    return labels


def _labels_from_feedback(path: Path) -> dict[Key, Any]:
    """The feedback lines of one file; a line cut short by a crash is skipped."""
    labels: dict[Key, Any] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            key = _key(record, str(path))
        except (ValueError, InputError):
            continue
        if record.get(DEFAULT_LABEL) is not None:
            labels[key] = record[DEFAULT_LABEL]
    return labels


def _key(record: dict[str, Any], where: str) -> Key:
    rid, row = record.get(REQUEST_ID), record.get(ROW)
    if not isinstance(rid, str) or not rid:
        raise InputError(f"{where}: {REQUEST_ID} must be a non-empty string")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        raise InputError(f"{where}: {ROW} must be a whole number from 0")
    return rid, row


def _label_of(labels: dict[Key, Any], rid: Any, row: Any, used: set[Key]) -> tuple[bool, Any]:
    """Whether a label came for the logged row (``rid``, ``row``), and which."""
    for key in ((rid, row), (rid, None)):
        if key in labels:
            used.add(key)
            return True, labels[key]
    return False, None


def _join_parquet(path: Path, labels: dict[Key, Any], name: str, used: set[Key]) -> int:
    """Label the rows of one Parquet log; rewrite it when any changed. Returns how many did."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    n = table.num_rows
    ids = table.column(REQUEST_ID).to_pylist()
    rows = table.column(ROW).to_pylist() if ROW in table.column_names else [None] * n
    values = table.column(name).to_pylist() if name in table.column_names else [None] * n
    changed = 0
    for i, (rid, row) in enumerate(zip(ids, rows, strict=True)):
        found, label = _label_of(labels, rid, row, used)
        if found and values[i] != label:
            values[i] = label
            changed += 1
    if changed:
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # labels of mixed kinds: as text
            column = pa.array([None if v is None else str(v) for v in values], pa.string())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
        _replace(path, lambda sink: pq.write_table(table, sink))
    return changed


def _join_lines(path: Path, labels: dict[Key, Any], name: str, used: set[Key]) -> int:
    """Label the rows of one JSON-lines log (as earlier releases wrote them)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, changed = [], 0
    for line in lines:
        record = json.loads(line)
        found, label = _label_of(labels, record.get(REQUEST_ID), record.get(ROW), used)
        if found and record.get(name) != label:
            record[name] = label
            changed += 1
        out.append(json.dumps(record, separators=(",", ":")))
    if changed:
        _replace_text(path, "\n".join(out) + "\n")
    return changed


def _keep_pending(feedback: list[Path], used: set[Key]) -> None:
    """Drop the feedback lines that found their rows; keep the others for later."""
    for path in feedback:
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                key = _key(json.loads(line), str(path))
            except (ValueError, InputError):
                continue
            if key not in used:
                kept.append(line)
        if kept:
            _replace_text(path, "\n".join(kept) + "\n")
        else:
            path.unlink()


def _replace_text(path: Path, text: str) -> None:
    _replace(path, lambda sink: sink.write(text.encode("utf-8")))


def _replace(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Replace ``path`` with what ``write`` writes: a synced temporary file, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as sink:
            write(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
